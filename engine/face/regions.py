"""Regions of a frame as RGB: from an RGB array, or straight from a decoded frame's YUV planes."""

from __future__ import annotations

import numpy as np

from ..media.colour import yuv_planes


def downscale(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """``rgb`` shrunk (area interpolation) so its long side is at most ``long_side``; else as is."""
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    import cv2

    scale = long_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


class RegionSource:
    """Where a tracker gets pixels: square regions resampled to a given size, or the whole
    frame downscaled. Subclasses read an RGB array or a decoded YUV frame's planes."""

    width: int
    height: int

    def region(self, x0: float, y0: float, side: float, out: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def full(self, max_side: int) -> tuple[np.ndarray, float]:  # pragma: no cover
        raise NotImplementedError


def _square_matrix(x0: float, y0: float, side: float, out: int) -> np.ndarray:
    s = out / side
    return np.array([[s, 0.0, -x0 * s + 0.5 * s - 0.5], [0.0, s, -y0 * s + 0.5 * s - 0.5]], np.float32)


class ArrayRegions(RegionSource):
    def __init__(self, rgb: np.ndarray):
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError("FaceTracker needs an RGB image")
        self.rgb = rgb[..., :3]
        self.height, self.width = rgb.shape[:2]

    def region(self, x0, y0, side, out):
        import cv2

        return cv2.warpAffine(self.rgb, _square_matrix(x0, y0, side, out), (out, out), flags=cv2.INTER_AREA
                              if side > out * 1.5 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def full(self, max_side):
        small = np.ascontiguousarray(downscale(self.rgb, max_side))
        return small, self.width / small.shape[1]


class YuvRegions(RegionSource):
    """Regions of a decoded yuv420p frame converted to RGB only where needed (a full-frame
    accurate RGB conversion costs ~25 ms at 720p; a 320-pixel face crop well under 1 ms)."""

    def __init__(self, frame):
        import cv2

        self.frame = frame
        self.width, self.height = frame.width, frame.height
        self.planes = yuv_planes(frame)
        self._cv2 = cv2

    def region(self, x0, y0, side, out):
        cv2 = self._cv2
        out += out % 2
        m = _square_matrix(x0, y0, side, out)
        half = _square_matrix(x0 / 2, y0 / 2, side / 2, out // 2)
        i420 = np.empty((out * 3 // 2, out), np.uint8)
        q = out // 2
        i420[:out] = cv2.warpAffine(self.planes[0], m, (out, out), flags=cv2.INTER_LINEAR, borderValue=16)
        u = cv2.warpAffine(self.planes[1], half, (q, q), flags=cv2.INTER_LINEAR, borderValue=128)
        v = cv2.warpAffine(self.planes[2], half, (q, q), flags=cv2.INTER_LINEAR, borderValue=128)
        flat = i420[out:].reshape(-1)  # I420: all of U, then all of V, packed
        flat[: q * q] = u.reshape(-1)
        flat[q * q :] = v.reshape(-1)
        # OpenCV's BT.601 matrix: exact colour does not matter to FaceMesh.
        return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)

    def full(self, max_side):
        w, h = self.width, self.height
        scale = min(1.0, max_side / max(w, h))
        tw, th = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
        small = self.frame.reformat(width=tw, height=th, format="rgb24").to_ndarray()
        return small, w / tw
