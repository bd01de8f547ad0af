"""Compositing: a chosen mouth crop onto a background frame, in place of its lower face.

The chosen lower face is warped onto the background frame with the frames' transforms plus
two small displacements: toward the target lip shape (``lip_correction_field``: lips pressed
together for every p/b/m) and onto the background's jaw line (``jaw_fit_field``), all three
in one resampling. It is blended with a feathered mask inside the background's own lower face,
colour-matched in Lab on a ring around the mask (smoothed over time), and cross-faded at
non-consecutive joins. All pixel work happens on the region of interest of the decoded YUV
planes: untouched pixels are copied.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..face import apply_transform, invert_transform, yuv_planes
from .library import K_CHIN, K_INNER, K_JAW, K_OUTER, K_SUBNASALE, K_UNDER_NOSE, KEPT_POSITION, Library
from .yuv import affine3, chroma_matrix

if TYPE_CHECKING:
    from .planner import Choice


_RGB_TO_YUV = {
    601: np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], np.float32),
    709: np.array([[0.183, 0.614, 0.062], [-0.101, -0.339, 0.439], [0.439, -0.399, -0.040]], np.float32),
}
_YUV_TO_RGB_M = {matrix: np.linalg.inv(m).astype(np.float32) for matrix, m in _RGB_TO_YUV.items()}
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)


def _yuv_to_lab(yuv: np.ndarray, matrix: int) -> np.ndarray:
    import cv2

    rgb = (yuv.astype(np.float32) - _YUV_OFFSET) @ _YUV_TO_RGB_M[matrix].T
    rgb = np.clip(rgb / 255.0, 0.0, 1.0).astype(np.float32)
    return cv2.cvtColor(rgb.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _lab_to_yuv(lab: np.ndarray, matrix: int) -> np.ndarray:
    import cv2

    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(-1, 3) * 255.0
    return rgb @ _RGB_TO_YUV[matrix].T + _YUV_OFFSET


def _odd(value: float) -> int:
    return max(3, int(round(value)) // 2 * 2 + 1)


def _copy_frame(frame, into=None):
    """A yuv420p frame with the same pixels and colour tags (the decoded one may be cached):
    ``into`` when given (a frame of the same size nobody uses any more), else a new one."""
    import av

    out = into if into is not None else av.VideoFrame(frame.width, frame.height, "yuv420p")
    for src, dst in zip(yuv_planes(frame), yuv_planes(out)):
        np.copyto(dst, src)
    out.colorspace = frame.colorspace
    out.color_range = frame.color_range
    # The decoded picture type travels to x264 (as it does when a frame is re-encoded as
    # it was decoded): it skips its own frame-type analysis, which costs ~2 ms a frame.
    out.pict_type = frame.pict_type
    return out


class _FramePool:
    """Output frames used again once nothing refers to them any more (the encoder has taken
    its copy, the queue and the caller have let go): a fresh 1080p frame costs a page fault
    per 4 KB on every frame, a recycled one only the copy. Whoever keeps a frame (a test, an
    evaluation) keeps it as it is: only frames with no other reference are reused."""

    LIMIT = 48  # frames kept at most; beyond, new ones are made and dropped as before

    def __init__(self):
        self.frames: list = []

    def copy(self, frame):
        import sys

        for kept in self.frames:
            # references: the list, the loop variable and getrefcount's argument
            if sys.getrefcount(kept) <= 3 and kept.width == frame.width and kept.height == frame.height:
                return _copy_frame(frame, kept)
        out = _copy_frame(frame)
        if len(self.frames) < self.LIMIT:
            self.frames.append(out)
        return out


def _polygon_lower_face(points: np.ndarray) -> np.ndarray:
    """The lower face (canonical coords): jaw line from cheek to cheek, closed under the nose."""
    jaw = points[K_JAW]
    under = points[K_UNDER_NOSE]
    return np.concatenate([jaw, under[1:-1]])


class MouthCompositor:
    """Puts a canonical mouth crop onto a background frame, in place of its lower face.

    Masks are drawn at half the crop's resolution (they are smooth; the warp into the frame
    upsamples them for free). Colour statistics are taken from a few hundred points of the
    ring just outside the mask, in crop space, where the background frame is sampled at the
    same places. Only the mask's bounding box of the frame is read or written.
    """

    EMA = 0.5  # weight of a new colour measurement (the rest: the running value)
    COLOUR_EVERY = 3  # frames between colour measurements
    RING_POINTS = 250

    def __init__(self, library: Library, matrix: int):
        import cv2

        self.cv2 = cv2
        self.lib = library
        self.iod = library.iod
        self.cw, self.ch = library.crop_size
        self.hw, self.hh = self.cw // 2, self.ch // 2
        self.origin = np.array(library.crop_origin, np.float32)
        self.matrix = matrix
        h = 0.5 * self.iod  # half-resolution units
        self.dilate = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_odd(0.08 * h),) * 2)
        self.ring_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_odd(0.14 * h),) * 2)
        self.sigma = 0.045 * h
        self.feather_size = int(round(self.sigma * 6 + 1)) | 1
        self.margin = int(math.ceil(0.1 * h)) + 1
        self.colour: np.ndarray | None = None  # running (dY, dU, dV, gain)
        self.centre = 0.0
        self._frames_since_colour = 0
        self.detail: np.ndarray | None = None  # running gains of the pasted mouth's finest and fine detail
        self.pool = _FramePool()
        # half-resolution mask pixel → full-resolution crop pixel (pixel centres)
        self.half_to_crop = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])

    # -- masks in (half-resolution) crop space ------------------------------------------------
    def _polygon(self, points: np.ndarray) -> np.ndarray:
        poly = _polygon_lower_face(points).copy()
        centre_x = float(points[K_SUBNASALE, 0])
        jaw = len(K_JAW)
        # Keep the jaw's outer edge (and the wall behind it) from the background frame.
        poly[:jaw, 0] = centre_x + (poly[:jaw, 0] - centre_x) * 0.84
        # The chin's edge too: the feather below reaches out to it, never past it (the new
        # mouth's chin is fitted onto this one, ``jaw_fit_field``), so the outline against the
        # neck and collar stays the background's.
        chin = np.arange(jaw // 2 - 3, jaw // 2 + 4)
        poly[chin, 1] -= JAW_INSET * self.iod
        # Stay under the nose.
        poly[jaw:, 1] += 0.03 * self.iod
        return (poly - self.origin) * 0.5 - 0.25

    def masks(self, background: int, source: int) -> np.ndarray:
        """The feathered mask at half the crop's resolution: the background's own lower face,
        a little inside its jaw line. The chosen mouth's jaw is warped onto this jaw line
        (``jaw_fit_field``), so nothing of it reaches past the background's outline: no
        second chin, no cheek over the wall or the collar."""
        cv2 = self.cv2
        poly = self._polygon(self.lib.points[background])
        support = np.zeros((self.hh, self.hw), np.uint8)
        cv2.fillPoly(support, [np.round(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=2)
        support = cv2.dilate(support, self.dilate)
        m = self.margin
        support[:m], support[-m:], support[:, :m], support[:, -m:] = 0, 0, 0, 0
        # blurred in float (OpenCV's 8-bit Gaussian is several times slower at this size),
        # over the support its 8-bit version uses (±3 sigma)
        mask = cv2.GaussianBlur(cv2.multiply(support, 1.0 / 255.0, dtype=cv2.CV_32F), (self.feather_size,) * 2,
                                self.sigma)
        cv2.threshold(mask, 0.01, 0.0, cv2.THRESH_TOZERO, dst=mask)
        return mask

    def ring(self, mask: np.ndarray, background: int, source: int) -> np.ndarray:
        """The band just outside ``mask`` where colour is compared (half resolution)."""
        cv2 = self.cv2
        inside = (mask > 0).astype(np.uint8)
        ring = cv2.dilate(inside, self.ring_kernel) - inside
        # Colour is compared on skin only: where both frames have face (not the wall beside
        # a turned cheek, nor the collar under a dropped chin).
        skin = np.zeros_like(ring)
        cv2.fillPoly(skin, [np.round(self._face(self.lib.points[background]) * 4).astype(np.int32)], 1,
                     lineType=cv2.LINE_8, shift=2)
        other = np.zeros_like(ring)
        cv2.fillPoly(other, [np.round(self._face(self.lib.points[source]) * 4).astype(np.int32)], 1,
                     lineType=cv2.LINE_8, shift=2)
        return ring & skin & other

    def _face(self, points: np.ndarray) -> np.ndarray:
        """The face from cheek to cheek below the eyes (half-resolution crop coordinates),
        pulled in a little from its outline."""
        outline = np.concatenate([points[K_JAW], points[[KEPT_POSITION[454], KEPT_POSITION[168], KEPT_POSITION[234]]]])
        centre = outline.mean(axis=0)
        outline = centre + (outline - centre) * 0.92
        return (outline - self.origin) * 0.5 - 0.25

    # -- one frame ----------------------------------------------------------------------------
    def compose(self, frame, background: int, source: int, crop, fade_crop=None, fade: float = 0.0,
                correction=None):
        cv2 = self.cv2
        lib = self.lib
        y_c, u_c, v_c = crop
        if fade_crop is not None and fade > 0:
            y_c = cv2.addWeighted(y_c, 1.0 - fade, fade_crop[0], fade, 0.0)
            u_c = cv2.addWeighted(u_c, 1.0 - fade, fade_crop[1], fade, 0.0)
            v_c = cv2.addWeighted(v_c, 1.0 - fade, fade_crop[2], fade, 0.0)
        fit = jaw_fit_field(lib.points[source], lib.points[background], self.origin, (self.cw, self.ch), self.iod)
        mask = self.masks(background, source)
        inside = mask > 0
        rows = np.flatnonzero(inside.any(axis=1))
        if len(rows) == 0:
            return frame, None, None

        to_crop = lib.transform[background].astype(np.float64).copy()
        to_crop[:, 2] -= self.origin
        crop_to_frame = affine3(invert_transform(to_crop))
        half_to_frame = crop_to_frame @ self.half_to_crop
        # The region of interest: the frame pixels the mask reaches, row by row of the mask
        # (the bounding box of its own bounding box would grow with the head's roll).
        spans = inside[rows]
        left = spans.argmax(axis=1) - 0.5
        right = spans.shape[1] + 0.5 - spans[:, ::-1].argmax(axis=1)
        top, bottom = rows - 0.5, rows + 1.5
        ends = np.concatenate([np.stack([left, top], 1), np.stack([left, bottom], 1), np.stack([right, top], 1),
                               np.stack([right, bottom], 1)]).astype(np.float32)
        placed = apply_transform(half_to_frame[:2].astype(np.float32), ends)
        fw, fh = frame.width, frame.height
        x0 = max(0, int(math.floor(placed[:, 0].min())) - 1) // 2 * 2
        y0 = max(0, int(math.floor(placed[:, 1].min())) - 1) // 2 * 2
        x1 = min(fw // 2 * 2, (int(math.ceil(placed[:, 0].max())) + 2) // 2 * 2)
        y1 = min(fh // 2 * 2, (int(math.ceil(placed[:, 1].max())) + 2) // 2 * 2)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return frame, None, None
        rw, rh = x1 - x0, y1 - y0
        shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        m = (shift @ crop_to_frame)[:2].astype(np.float32)
        mc = chroma_matrix(m)
        fields = [field for field in (fit, correction) if field is not None]
        planes = yuv_planes(frame)

        def crop_points(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # where in the chosen crop a corrected crop's pixel comes from: the jaw fit was
            # made for the lip-corrected crop, so it is undone first
            for field in fields:
                px, py = field.source(px, py)
            return px, py

        self._update_colour(lambda: self.ring(mask, background, source), (y_c, u_c, v_c), planes, half_to_frame,
                            crop_points)
        y_c, u_c, v_c = self._corrected(y_c, u_c, v_c)

        # One resampling from the crop into the frame: the ROI's pixels are traced back through
        # the placement, the jaw fit and the lip-shape correction together (each smooth, so
        # traced on the chroma grid and interpolated up for luma). Resampling at each step
        # would soften the mouth once per step.
        to_crop_roi = invert_transform(m)
        cx = np.arange(rw // 2, dtype=np.float32) * 2.0 + 0.5
        cy = np.arange(rh // 2, dtype=np.float32) * 2.0 + 0.5
        gx = (to_crop_roi[0, 0] * cx[None, :] + to_crop_roi[0, 1] * cy[:, None] + to_crop_roi[0, 2]).astype(np.float32)
        gy = (to_crop_roi[1, 0] * cx[None, :] + to_crop_roi[1, 1] * cy[:, None] + to_crop_roi[1, 2]).astype(np.float32)
        gx, gy = crop_points(gx, gy)
        half_map = cv2.merge([gx, gy])
        luma_map = cv2.resize(half_map, (rw, rh), interpolation=cv2.INTER_LINEAR)
        # chroma sample (i, j) sits at luma (2i + 0.5, 2j + 0.5)
        chroma_map = (half_map - 0.5) * 0.5

        # the mask: half-resolution crop → chroma-sized ROI (one small warp), then ×2 for luma
        # (the half-resolution mask lies on the crop's chroma grid, so the chroma matrix fits)
        a2 = cv2.warpAffine(mask, mc, (rw // 2, rh // 2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        alpha = cv2.resize(a2, (rw, rh), interpolation=cv2.INTER_LINEAR)
        alpha[alpha < 0.01] = 0.0
        a2[a2 < 0.01] = 0.0
        # Luma bicubic: a bilinear warp at a fractional shift averages neighbouring pixels,
        # and the crop is resampled twice on its way (footage → atlas → frame): visibly
        # softer than the untouched upper face. Chroma (half size, and soft) stays bilinear.
        # (The lip correction and the jaw fit used to resample the crop once more each.)
        border = cv2.BORDER_REPLICATE
        # Maps in OpenCV's fixed point first (what remap makes of float maps block by block
        # anyway: the same pixels), once for both chroma planes.
        luma_xy, luma_frac = cv2.convertMaps(luma_map, None, cv2.CV_16SC2)
        chroma_xy, chroma_frac = cv2.convertMaps(chroma_map, None, cv2.CV_16SC2)
        y_s = cv2.remap(y_c, luma_xy, luma_frac, cv2.INTER_CUBIC, borderMode=border)
        u_s = cv2.remap(u_c, chroma_xy, chroma_frac, cv2.INTER_LINEAR, borderMode=border)
        v_s = cv2.remap(v_c, chroma_xy, chroma_frac, cv2.INTER_LINEAR, borderMode=border)

        out = self.pool.copy(frame)
        out_planes = yuv_planes(out)
        out_planes[0][y0:y1, x0:x1] = self._blend_luma(y_s, planes[0][y0:y1, x0:x1], alpha, m, background, source)
        beta2 = 1.0 - a2
        for k, plane_s in ((1, u_s), (2, v_s)):
            window = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
            out_planes[k][window] = cv2.blendLinear(plane_s, planes[k][window], a2, beta2)
        return out, (x0, y0, x1, y1), alpha

    def _blend_luma(self, pasted: np.ndarray, under: np.ndarray, alpha: np.ndarray, to_roi: np.ndarray,
                    background: int, source: int) -> np.ndarray:
        """The pasted luma over the background's, in two bands, its fine detail matched.

        *Two bands.* A feathered blend of two different faces averages their textures across
        the feather — a band along the jaw and under the nose that is smoother than either
        face. So only the coarse band (a ``BAND_SIGMA`` Gaussian: shading, colour) is
        feathered; the fine band (the rest: pores, stubble, lip lines, teeth edges) switches
        from one face to the other over a few pixels in the middle of the feather.

        *Matched detail.* However carefully resampled, the pasted mouth has been through two
        warps and the atlas's encoder and is softer than the face around it, most of all in
        its finest octave (``FINEST_SIGMA``). The fine band's two parts, that octave and the
        rest, are each scaled by the ratio of their RMS to the background's on the face both
        show (inside the mask, less the two mouth openings, whose teeth or darkness differ):
        never down, at most ``DETAIL_MAX_GAIN``, smoothed over time like the colour so they do
        not flicker.

        Where ``alpha`` is 0 the background's samples come back exactly."""
        cv2 = self.cv2
        fine_s = pasted.astype(np.float32)
        fine_b = under.astype(np.float32)
        low_s = cv2.GaussianBlur(fine_s, (0, 0), BAND_SIGMA)
        low_b = cv2.GaussianBlur(fine_b, (0, 0), BAND_SIGMA)
        cv2.subtract(fine_s, low_s, dst=fine_s)
        cv2.subtract(fine_b, low_b, dst=fine_b)
        # One gain for the whole fine band left the finest octave, what the eye reads as
        # sharpness, under the skin's (lower face 0.77-0.84 x as sharp as recorded).
        finest_s = cv2.subtract(fine_s, cv2.GaussianBlur(fine_s, (0, 0), FINEST_SIGMA))
        finest_b = cv2.subtract(fine_b, cv2.GaussianBlur(fine_b, (0, 0), FINEST_SIGMA))
        cv2.subtract(fine_s, finest_s, dst=fine_s)

        keep = cv2.compare(alpha, 0.6, cv2.CMP_GT)  # 255 on the skin both faces show …
        mouths = np.zeros_like(keep)
        for frame_index in (background, source):
            opening = apply_transform(to_roi, self.lib.points[frame_index][K_INNER] - self.origin)
            cv2.fillPoly(mouths, [np.round(opening * 4).astype(np.int32)], 255, shift=2)
        cv2.subtract(keep, mouths, dst=keep)  # … less the two mouth openings
        count = cv2.countNonZero(keep)
        if count >= 50:
            def rms(band):
                return math.sqrt(cv2.norm(band, cv2.NORM_L2SQR, mask=keep) / count)

            gains = np.clip([rms(finest_b) / max(rms(finest_s), 1e-3),
                             rms(cv2.subtract(fine_b, finest_b)) / max(rms(fine_s), 1e-3)], 1.0, DETAIL_MAX_GAIN)
            self.detail = gains if self.detail is None else (1 - self.EMA) * self.detail + self.EMA * gains
        finest_gain, fine_gain = (1.0, 1.0) if self.detail is None else (float(g) for g in self.detail)

        # = under + alpha·(low_s − low_b) + switch·(gains·bands_s − fine_b), switch =
        # clip((alpha − 0.5)·DETAIL_SWITCH + 0.5, 0, 1), in place in the work buffers
        switch = cv2.addWeighted(alpha, DETAIL_SWITCH, alpha, 0.0, 0.5 - 0.5 * DETAIL_SWITCH)
        cv2.threshold(switch, 1.0, 1.0, cv2.THRESH_TRUNC, dst=switch)
        cv2.max(switch, 0.0, dst=switch)
        cv2.subtract(low_s, low_b, dst=low_s)
        cv2.multiply(low_s, alpha, dst=low_s)
        # The two faces' fine textures do not line up, so a plain cross-fade of them has less
        # detail than either (half the variance halfway): the switch is normalised to keep it.
        cv2.addWeighted(fine_s, fine_gain, fine_b, -1.0, 0.0, dst=fine_s)
        cv2.scaleAdd(finest_s, finest_gain, fine_s, dst=fine_s)
        cv2.multiply(fine_s, switch, dst=fine_s)
        cv2.add(fine_s, fine_b, dst=fine_s)  # (1 − switch)·fine_b + switch·gains·bands_s
        rest = cv2.subtract(1.0, switch)
        norm = cv2.sqrt(cv2.add(cv2.multiply(switch, switch), cv2.multiply(rest, rest)))
        cv2.divide(fine_s, norm, dst=fine_s)
        cv2.subtract(fine_s, fine_b, dst=fine_s)
        cv2.add(low_s, fine_s, dst=low_s)
        # rounded and saturated to 8 bits where the mask reaches; the background's own elsewhere
        out = under.copy()
        cv2.add(low_s, under, dst=out, mask=cv2.compare(alpha, 0.0, cv2.CMP_GT), dtype=cv2.CV_8U)
        return out

    def _corrected(self, y_c, u_c, v_c):
        """The crop with the running colour correction applied (a lookup table per plane)."""
        if self.colour is None:
            return y_c, u_c, v_c
        cv2 = self.cv2
        dy, du, dv, gain = (float(v) for v in self.colour)
        levels = np.arange(256, dtype=np.float32)
        y_lut = np.clip(self.centre + gain * (levels - self.centre) + dy + 0.5, 0, 255).astype(np.uint8)
        u_lut = np.clip(levels + du + 0.5, 0, 255).astype(np.uint8)
        v_lut = np.clip(levels + dv + 0.5, 0, 255).astype(np.uint8)
        return cv2.LUT(y_c, y_lut), cv2.LUT(u_c, u_lut), cv2.LUT(v_c, v_lut)

    def _update_colour(self, ring: Callable[[], np.ndarray], crop, planes, half_to_frame: np.ndarray,
                       crop_points: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
        """Lab statistics on the ring just outside the mask: the source's mean colour is moved
        to the background's and its lightness contrast scaled, smoothed over time. ``ring``
        draws the ring, only on the frames that measure; ``crop_points`` traces a corrected
        crop's pixels back to the chosen crop's."""
        self._frames_since_colour += 1
        if self.colour is not None and self._frames_since_colour < self.COLOUR_EVERY:
            return  # lighting changes slowly; the running value carries over
        rows, cols = np.nonzero(ring())
        if rows.size < 20:
            return
        self._frames_since_colour = 0
        step = max(1, rows.size // self.RING_POINTS)
        rows, cols = rows[::step], cols[::step]
        y_c, u_c, v_c = crop
        # the corrected crop at those points (full-resolution crop pixel = 2 × half + 0.5)
        px, py = crop_points((cols * 2).astype(np.float32)[None, :], (rows * 2).astype(np.float32)[None, :])
        cy = np.clip(np.round(py[0]).astype(np.int64), 0, y_c.shape[0] - 1)
        cx = np.clip(np.round(px[0]).astype(np.int64), 0, y_c.shape[1] - 1)
        src = np.stack([y_c[cy, cx], u_c[cy // 2, cx // 2], v_c[cy // 2, cx // 2]], axis=1).astype(np.float32)
        # the background frame at the same places
        where = apply_transform(half_to_frame[:2].astype(np.float32),
                                np.stack([cols, rows], axis=1).astype(np.float32))
        fx = np.clip(np.round(where[:, 0]).astype(np.int64), 0, planes[0].shape[1] - 1)
        fy = np.clip(np.round(where[:, 1]).astype(np.int64), 0, planes[0].shape[0] - 1)
        hx = np.minimum(fx // 2, planes[1].shape[1] - 1)
        hy = np.minimum(fy // 2, planes[1].shape[0] - 1)
        dst = np.stack([planes[0][fy, fx], planes[1][hy, hx], planes[2][hy, hx]], axis=1).astype(np.float32)
        lab_s, lab_b = _yuv_to_lab(src, self.matrix), _yuv_to_lab(dst, self.matrix)
        mean_s, mean_b = np.median(lab_s, axis=0), np.median(lab_b, axis=0)
        gain = float(np.clip((lab_b[:, 0].std() + 1.0) / (lab_s[:, 0].std() + 1.0), 0.85, 1.18))
        shift = _lab_to_yuv(mean_b, self.matrix)[0] - _lab_to_yuv(mean_s, self.matrix)[0]
        shift = np.clip(shift, -25.0, 25.0)
        current = np.array([shift[0], shift[1], shift[2], gain], np.float32)
        self.centre = float(src[:, 0].mean())
        self.colour = current if self.colour is None else (1 - self.EMA) * self.colour + self.EMA * current


# -- the corrections: where a corrected crop's pixels come from ------------------------------


class GridShift:
    """A backward displacement sampled on a regular grid of crop coordinates (zero off the
    grid): a corrected crop's pixel at (x, y) comes from the chosen crop at (x, y) − shift.
    ``shift`` is (rows, columns, 2) float32 (dx, dy), sample (j, i) at ``origin + (i, j) ×
    step``. Both corrections are smooth, so sampling them bilinearly between grid points
    loses nothing; ``MouthCompositor.compose`` traces each frame's pixels through them and
    resamples the crop once."""

    def __init__(self, origin: tuple[float, float], step: tuple[float, float], shift: np.ndarray):
        self.origin = origin
        self.step = step
        self.shift = np.ascontiguousarray(shift, np.float32)

    def source(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the corrected crop's points (xs, ys) (float32, same 2-D shape) come from."""
        import cv2

        gx = (xs - np.float32(self.origin[0])) * np.float32(1.0 / self.step[0])
        gy = (ys - np.float32(self.origin[1])) * np.float32(1.0 / self.step[1])
        moved = cv2.remap(self.shift, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        moved = moved.reshape(xs.shape + (2,))
        return xs - moved[..., 0], ys - moved[..., 1]


DETAIL_MAX_GAIN = 2.5  # the pasted mouth's fine detail is raised at most this much
BAND_SIGMA = 2.0  # pixels: detail finer than this is not feathered but switched (``_blend_luma``)
FINEST_SIGMA = 0.8  # pixels: the finest octave of that detail, matched on its own
DETAIL_SWITCH = 4.0  # how much steeper than the feather the fine band's switch is
JAW_INSET = 0.03  # inter-ocular units: the mask's edge inside the background's chin line
JAW_FIT_SIGMA = 0.14  # inter-ocular units: how far from each landmark its displacement reaches


def jaw_fit_field(source: np.ndarray, background: np.ndarray, crop_origin: np.ndarray, size: tuple[int, int],
                  iod: float) -> GridShift | None:
    """The displacement (``GridShift``, crop coordinates) that moves the chosen mouth's jaw
    line onto the background frame's, keeping its lips and the skin under its nose in place,
    or None when the two jaws already agree to within a pixel.

    Both frames are in canonical space, but the rigid alignment fits the eyes and nose: the
    jaw of another frame lies elsewhere by the head's pitch, the chin's drop and the face's
    turn. Pasted unfitted, its chin and cheek land beside the background's (a pale crescent
    over the collar, a second chin outline). The displacement is interpolated smoothly
    (Gaussian-weighted) between the jaw landmarks, which move by background − source, and
    the outer lip contour and under-nose points, which stay."""
    jaw_to = background[K_JAW] - crop_origin
    jaw_from = source[K_JAW] - crop_origin
    moves = jaw_to - jaw_from
    if float(np.abs(moves).max()) < 1.0:
        return None
    still = np.concatenate([source[K_OUTER], source[K_UNDER_NOSE]]) - crop_origin
    anchors = np.concatenate([jaw_to, still]).astype(np.float32)
    values = np.concatenate([moves, np.zeros_like(still)]).astype(np.float32)
    w, h = size
    # over the rows and columns the jaw and lips span
    x0 = max(0, int(math.floor(anchors[:, 0].min() - 0.1 * iod)) // 2 * 2)
    x1 = min(w, int(math.ceil(anchors[:, 0].max() + 0.1 * iod)) // 2 * 2 + 2)
    y0 = max(0, int(math.floor(still[:, 1].min())) // 2 * 2)
    y1 = min(h, int(math.ceil(max(jaw_to[:, 1].max(), jaw_from[:, 1].max()) + 0.15 * iod)) // 2 * 2 + 2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    # The field is smooth (it varies over ``JAW_FIT_SIGMA``): worked out on a coarse grid.
    step = max(2.0, 0.05 * iod)
    columns = max(2, int(math.ceil((x1 - x0) / step)) + 1)
    rows = max(2, int(math.ceil((y1 - y0) / step)) + 1)
    xs = np.linspace(x0, x1 - 1, columns, dtype=np.float32)
    ys = np.linspace(y0, y1 - 1, rows, dtype=np.float32)
    # A Gaussian of the distance is the product of Gaussians of its x and y parts: per anchor,
    # one row of weights along x and one along y instead of the whole grid's distances.
    scale = np.float32(-1.0 / (2.0 * (JAW_FIT_SIGMA * iod) ** 2))
    along_x = np.exp((xs[:, None] - anchors[None, :, 0]) ** 2 * scale)  # columns × anchors
    along_y = np.exp((ys[:, None] - anchors[None, :, 1]) ** 2 * scale)  # rows × anchors
    # One small matrix product for the weights and both weighted moves together (rows ×
    # anchors by anchors × (columns × [1, dx, dy])); far below BLAS's threading threshold.
    per_anchor = along_x[:, :, None] * np.concatenate([np.ones_like(values[:, :1]), values], axis=1)[None, :, :]
    sums = (along_y @ per_anchor.transpose(1, 0, 2).reshape(len(anchors), -1)).reshape(rows, columns, 3)
    # a floor on the total weight: far from every landmark the displacement fades to nothing
    shift = sums[:, :, 1:] / (sums[:, :, :1] + np.float32(0.05))
    step_x = (x1 - 1 - x0) / (columns - 1)
    step_y = (y1 - 1 - y0) / (rows - 1)
    return GridShift((float(x0), float(y0)), (step_x, step_y), shift)


CORRECTION = 0.8  # share of the gap between the chosen mouth and the target that is warped away
MAX_CORRECTION = 0.08  # inter-ocular units


def lip_gap_change(lib: Library, choice: Choice, target: np.ndarray) -> float:
    """Canonical pixels by which to change the chosen mouth's inner-lip gap."""
    gap = float(lib.state[choice.unit, 0])
    if choice.closed:  # press the lips together, whatever it takes
        return -1e6 if gap > 0.008 else 0.0
    change = CORRECTION * (float(target[0]) - gap)
    change = float(np.clip(change, -MAX_CORRECTION, MAX_CORRECTION))
    if change > 0:  # open only a mouth that is open: there must be an inside to stretch
        change = min(change, max(0.0, gap - 0.02))
    return change * lib.iod


def _contour_y(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def lip_correction_field(points: np.ndarray, crop_origin: np.ndarray, size: tuple[int, int], iod: float,
                         gap_change: float) -> GridShift | None:
    """The lip-shape correction for a crop whose inner-lip gap should change by
    ``gap_change`` canonical pixels (negative: close), as a ``GridShift`` (crop coordinates,
    vertical only) over the sub-rectangle it moves, or None.

    Column by column, a piecewise-linear (piecewise-affine) vertical map through the lips'
    contours: the upper lip moves by −30 %, the lower lip by +70 % and the chin by +50 % of
    the change; the mouth opening between the inner contours stretches or collapses (to
    nothing when fully closed), fading out past the mouth corners."""
    if abs(gap_change) < 0.8:  # under a pixel: not worth a warp
        return None
    w, h = size
    p = points - crop_origin
    outer, inner = p[K_OUTER], p[K_INNER]
    left, right = float(outer[:, 0].min()), float(outer[:, 0].max())
    half = max((right - left) / 2, 1.0)
    centre = (left + right) / 2
    x0 = max(0, int(math.floor(centre - 1.45 * half)) // 2 * 2)
    x1 = min(w, int(math.ceil(centre + 1.45 * half)) // 2 * 2 + 2)
    top_y = float(p[K_SUBNASALE, 1]) + 0.04 * iod
    chin_y = float(p[K_CHIN, 1])
    bottom_y = chin_y + 0.3 * iod
    y0 = max(0, int(math.floor(top_y)) // 2 * 2)
    y1 = min(h, int(math.ceil(bottom_y)) // 2 * 2 + 2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    # Worked out on the chroma grid (every other pixel, at 2i + 0.5).
    cx = np.arange(x0, x1, 2, dtype=np.float32) + 0.5
    weight = np.clip(1.0 - (np.abs(cx - centre) - 0.95 * half) / (0.5 * half), 0.0, 1.0)
    inner_top, inner_bottom = inner[:11], np.concatenate([inner[10:], inner[:1]])
    outer_top, outer_bottom = outer[:11], np.concatenate([outer[10:], outer[:1]])
    inner_left, inner_right = float(inner[:, 0].min()), float(inner[:, 0].max())
    inside = (cx > inner_left) & (cx < inner_right)
    u_out = _contour_y(outer_top, cx)
    l_out = _contour_y(outer_bottom, cx)
    u_in = np.where(inside, _contour_y(inner_top, cx), (u_out + l_out) / 2)
    l_in = np.where(inside, _contour_y(inner_bottom, cx), u_in)
    chin = np.full_like(cx, chin_y)
    top = np.full_like(cx, top_y)
    bottom = np.full_like(cx, bottom_y)
    src = np.stack([top, u_out, u_in, l_in, l_out, chin, bottom])
    if gap_change < 0:  # close: each column's gap shrinks by the same share (to 0 when fully closed)
        local_gap = np.maximum(l_in - u_in, 0.0)
        middle = np.abs(cx - centre) < 0.3 * half
        centre_gap = max(float(local_gap[middle].mean()) if middle.any() else float(local_gap.max()), 1e-3)
        change = -local_gap * min(1.0, -gap_change / centre_gap) * weight
    else:
        change = gap_change * weight
    zero = np.zeros_like(cx)
    shift = np.stack([zero, -0.3 * change, -0.3 * change, 0.7 * change, 0.7 * change, 0.5 * change, zero])
    dst = np.maximum.accumulate(src + shift, axis=0)  # keep the knots in order
    ys = np.arange(y0, y1, 2, dtype=np.float32)[:, None] + 0.5
    shift = np.zeros((len(ys), len(cx), 2), np.float32)
    shift[..., 1] = ys - _column_maps(src, dst, ys)
    return GridShift((float(cx[0]), float(ys[0, 0])), (2.0, 2.0), shift)


def _column_maps(src: np.ndarray, dst: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Column by column (knots × columns ``src`` and ``dst``, ``dst`` non-decreasing down each
    column), the rows ``ys`` (rows × 1) through the piecewise-linear map from the moved knots
    ``dst`` back to ``src``; identity outside ``[dst[0], dst[-1])``. All columns in one
    ``np.interp``: each column's knots and rows are offset by its own stretch of the line."""
    low = min(float(dst.min()), float(ys.min()))
    spacing = 2.0 * (max(float(dst.max()), float(ys.max())) - low) + 1.0
    offset = np.arange(dst.shape[1], dtype=np.float64) * spacing - low
    knots = (dst.astype(np.float64) + offset[None, :]).T.reshape(-1)
    grid = ys.astype(np.float64) + offset[None, :]
    mapped = np.interp(grid.reshape(-1), knots, src.T.astype(np.float64).reshape(-1)).reshape(grid.shape)
    inside = (ys >= dst[0][None, :]) & (ys < dst[-1][None, :])
    return np.where(inside, mapped, ys)
