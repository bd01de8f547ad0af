"""Frame ⇄ RGB conversion with explicit colour tags.

Every encode is tagged BT.709 / limited range and converted to it explicitly, so browsers
show the same colours as the RGB frames the engine worked on. Untagged sources are read as
BT.601 below 720 lines and BT.709 from 720 lines up, which is what players assume.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import Interpolation

BT709 = 1
_UNSPECIFIED = 2
_SMPTE170M = 6
RANGE_MPEG = 1
_RANGE_JPEG = 2

# swscale's default YUV→RGB path is fast but darkens every channel by ~1 level; accurate
# rounding with full chroma interpolation is unbiased (~4 ms per 720p frame).
_TO_RGB = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_TO_YUV = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT


def source_colorspace(frame: av.VideoFrame) -> int:
    cs = int(frame.colorspace or _UNSPECIFIED)
    if cs in (0, _UNSPECIFIED, 3):  # RGB/unspecified/reserved: guess like players do
        return BT709 if frame.height >= 720 else _SMPTE170M
    return cs


def source_range(frame: av.VideoFrame) -> int:
    if frame.format.name.startswith("yuvj"):
        return _RANGE_JPEG
    return int(frame.color_range or 0) or RANGE_MPEG


def frame_to_rgb(frame: av.VideoFrame, *, rotation: int = 0) -> np.ndarray:
    """Decoded frame → upright RGB uint8 array (rotation in degrees counter-clockwise)."""
    if frame.format.name in ("rgb24",):
        rgb = frame.to_ndarray()
    else:
        rgb = frame.reformat(
            format="rgb24",
            src_colorspace=source_colorspace(frame),
            src_color_range=source_range(frame),
            interpolation=_TO_RGB,
        ).to_ndarray()
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def rgb_to_frame(rgb: np.ndarray) -> av.VideoFrame:
    """RGB uint8 → BT.709 limited-range yuv420p frame, as the encoders expect."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., :3]), format="rgb24")
    return frame.reformat(
        format="yuv420p", dst_colorspace=BT709, dst_color_range=RANGE_MPEG, interpolation=_TO_YUV
    )


class BoxedRgbToFrame:
    """``rgb_to_frame`` for a stream of RGB frames that differ from the first one only inside
    ``box`` (x0, y0, x1, y1): the first is converted whole, each later one only round the box,
    the rest copied from the first's planes. A talking photo changes only round the head, and
    converting the whole 720p frame cost a third as much CPU as animating it. Chroma is
    filtered across neighbouring pixels, so a margin round the box is converted and pasted
    too: the result is exactly the whole-frame conversion's."""

    MARGIN = 8

    def __init__(self, box: tuple[int, int, int, int], width: int, height: int):
        x0, y0, x1, y1 = box
        m = self.MARGIN

        def even_box(left, top, right, bottom):
            return (max(0, left // 2 * 2), max(0, top // 2 * 2),
                    min(width, (right + 1) // 2 * 2), min(height, (bottom + 1) // 2 * 2))

        # Pasted: the box and the pixels round it its change reaches through the chroma
        # filter; converted: that and as much again, so what is pasted saw its real neighbours.
        self.inner = even_box(x0 - m // 2, y0 - m // 2, x1 + m // 2, y1 + m // 2)
        self.outer = even_box(x0 - m, y0 - m, x1 + m, y1 + m)
        self.first: av.VideoFrame | None = None

    def __call__(self, rgb: np.ndarray) -> av.VideoFrame:
        if self.first is None:
            self.first = rgb_to_frame(rgb)
            return self.first
        ox0, oy0, ox1, oy1 = self.outer
        ix0, iy0, ix1, iy1 = self.inner
        part = rgb_to_frame(rgb[oy0:oy1, ox0:ox1])
        out = av.VideoFrame(self.first.width, self.first.height, "yuv420p")
        for scale, whole, src, dst in zip((1, 2, 2), yuv_planes(self.first), yuv_planes(part), yuv_planes(out)):
            np.copyto(dst, whole)
            dst[iy0 // scale:iy1 // scale, ix0 // scale:ix1 // scale] = src[
                (iy0 - oy0) // scale:(iy1 - oy0) // scale, (ix0 - ox0) // scale:(ix1 - ox0) // scale]
        out.colorspace, out.color_range = self.first.colorspace, self.first.color_range
        return out


def yuv_planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (no copy) of a yuv420p frame's Y, U and V planes, padding stripped."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        raise ValueError(f"expected a yuv420p frame, got {frame.format.name}")
    out = []
    for index, plane in enumerate(frame.planes):
        w = frame.width if index == 0 else (frame.width + 1) // 2
        h = frame.height if index == 0 else (frame.height + 1) // 2
        out.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w])
    return out[0], out[1], out[2]


def to_encoder_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """A decoded frame as the encoder takes it: yuv420p BT.709 limited range at its size."""
    if (
        frame.format.name == "yuv420p"
        and frame.width == width
        and frame.height == height
        and int(frame.colorspace or 0) == BT709
        and int(frame.color_range or 0) == RANGE_MPEG
    ):
        return frame
    return frame.reformat(
        width=width,
        height=height,
        format="yuv420p",
        src_colorspace=source_colorspace(frame),
        src_color_range=source_range(frame),
        dst_colorspace=BT709,
        dst_color_range=RANGE_MPEG,
        interpolation="AREA",
    )
