"""The inside of the mouth wherever the lips part: cavity, tongue, lower and upper teeth.

Drawn per pixel in the face frame (u along the mouth, v down) between the moved inner-lip
contours, so every edge is anti-aliased and follows the lips exactly. Back to front:

- the cavity: the lip colour darkened, lighter near the lips (light falls in from the front)
  and darkest deep inside and towards the corners — never a flat grey hole;
- the tongue: low in the mouth, its tip raised for D/N/T/L-like visemes;
- the lower teeth: they ride on the jaw, just inside the lower lip, shown only as the mouth
  opens (in proportion to the opening);
- the upper teeth: fixed to the skull, so they show more as the upper lip lifts; their edge
  is an arch, darker towards the corners, with faint gaps between the front teeth.

When the photo itself shows teeth, its own pixels are used for them (the upper row where it
was, the lower row moved with the jaw), and the drawn teeth take their colour.
"""

from __future__ import annotations

import numpy as np

TOOTH_GAPS_IO = (0.0, 0.095, 0.18, 0.25)  # from the middle: between incisors, laterals, canines


def _smooth(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _curve(u: np.ndarray, contour: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(u, contour[order, 0], contour[order, 1])


def render_mouth(rig, upper: np.ndarray, lower: np.ndarray, pose, lower_shift: np.ndarray):
    """(x0, y0, rgb float32 (h, w, 3), alpha float32 (h, w)) of the mouth's inside, in photo
    coordinates, or None when the lips touch everywhere.

    ``upper``/``lower``: the moved inner-lip contours in the face frame (corner to corner);
    ``lower_shift``: how far the jaw moved the middle of the lower lip (image pixels), for the
    photo's own lower teeth."""
    gaps = _curve(upper[:, 0], lower) - upper[:, 1]
    if gaps.max() < 0.05:
        return None
    frame, io, hw = rig.frame, rig.io, rig.mouth_half_width
    outline = frame.origin + frame.vectors_to_image(np.concatenate([upper, lower]))
    x0, y0 = np.floor(outline.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(outline.max(axis=0)).astype(int) + 3
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, rig.width), min(y1, rig.height)
    if x1 <= x0 or y1 <= y0:
        return None
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    uv = frame.to_face(np.stack([gx, gy], axis=-1))
    u, v = uv[..., 0], uv[..., 1]
    v_up, v_lo = _curve(u, upper), _curve(u, lower)
    left, right = upper[:, 0].min(), upper[:, 0].max()
    within = (u > left) & (u < right)
    edge = np.minimum(v - v_up, v_lo - v)
    # Anti-aliased: the share of each pixel's height inside the opening (zero when the lips touch).
    coverage_1d = np.minimum(v + 0.5, v_lo) - np.maximum(v - 0.5, v_up)
    alpha = np.where(within, np.clip(coverage_1d, 0.0, 1.0), 0.0)
    if alpha.max() <= 0:
        return None
    gap = np.maximum(v_lo - v_up, 1e-3)
    across = np.clip(u / max(hw, 1e-6), -1.2, 1.2)
    arch = np.sqrt(np.clip(1 - (u / (0.85 * hw)) ** 2, 0, 1))

    lip = rig.lip_colour.astype(np.float64)
    depth = _smooth(np.maximum(edge, 0) / (0.05 * io))
    shade = (0.5 - 0.28 * depth) * (1 - 0.35 * across**2)
    rgb = lip[None, None, :] * shade[..., None]

    # Tongue: a low mound; for D/N/T/L its tip rises towards the upper teeth.
    lift = 0.22 + 0.5 * pose.tongue
    tongue_top = v_lo - lift * gap * np.sqrt(np.clip(1 - (u / (0.8 * hw)) ** 2, 0, 1))
    tongue_alpha = np.clip(v - tongue_top, 0, 1) * (gap > 0.04 * io) * _smooth((gap - 0.04 * io) / (0.04 * io))
    tongue = lip * np.array([1.0, 0.68, 0.68]) * (0.78 + 0.12 * pose.tongue)
    rgb = rgb * (1 - tongue_alpha[..., None]) + tongue * tongue_alpha[..., None] * (1 - 0.3 * across[..., None] ** 2)

    teeth = rig.teeth_colour.astype(np.float64)
    gaps_between = np.ones_like(u)
    for at in sorted({sign * k for k in TOOTH_GAPS_IO for sign in (-1, 1)}) if rig.photo_teeth is None else ():
        gaps_between -= 0.13 * np.exp(-((u - at * io) / (0.006 * io)) ** 2)
    # The side teeth sit back in the cheeks' shadow.
    corner_shade = np.clip(1 - 0.75 * across**2, 0.15, 1)[..., None]

    # Lower teeth: a band just inside the lower lip, as tall as the opening allows.
    low_h = np.minimum(0.025 * io, 0.12 * np.maximum(gap - 0.06 * io, 0)) * (0.4 + 0.6 * pose.teeth) * arch
    low_alpha = np.clip(v - (v_lo - low_h), 0, 1) * (low_h > 0.5)
    low_colour = (teeth * 0.78 * corner_shade + lip * 0.35 * (1 - corner_shade)) * gaps_between[..., None]
    rgb = rgb * (1 - low_alpha[..., None]) + low_colour * low_alpha[..., None]

    # Upper teeth: their edge is fixed to the skull, below the lip's rest line.
    rest_up = _curve(u, rig.mesh.face_xy[rig.mesh.upper_inner])
    edge_v = rest_up + io * (0.015 + 0.035 * pose.teeth) * arch
    up_alpha = np.clip(edge_v - v + 0.5, 0, 1) * (arch > 0)
    lip_shadow = 0.7 + 0.3 * _smooth((v - v_up) / (0.03 * io))
    # In the lip's shadow the teeth take the lips' reflected red, not grey.
    lit = corner_shade * lip_shadow[..., None]
    up_colour = (teeth * lit + lip * 0.45 * (1 - lit)) * gaps_between[..., None]
    rgb = rgb * (1 - up_alpha[..., None]) + up_colour * up_alpha[..., None]

    if rig.photo_teeth is not None:
        rgb = _photo_teeth(rig, rgb, x0, y0, x1, y1, u, v, lower_shift)
    import cv2

    rgb = cv2.GaussianBlur(rgb.astype(np.float32), (3, 3), 0.6)
    return x0, y0, rgb.astype(np.float32), alpha.astype(np.float32)


def _photo_teeth(rig, rgb, x0, y0, x1, y1, u, v, lower_shift):
    """The photo's own upper teeth: the upper half of its mouth opening, as it was (the upper
    teeth are fixed to the skull), blended in over two pixels; below it the drawn inside."""
    import cv2

    opening = rig.photo_teeth[y0:y1, x0:x1].astype(np.float32)
    opening = cv2.GaussianBlur(cv2.erode(opening, np.ones((3, 3), np.uint8)), (3, 3), 0.8)
    mid = (rig.mesh.face_xy[rig.mesh.upper_inner] + rig.mesh.face_xy[rig.mesh.lower_inner]) / 2
    upper_half = np.clip(_curve(u, mid) - v + 0.5, 0, 2) / 2
    a = (opening * upper_half)[..., None]
    return rgb * (1 - a) + rig.rgb[y0:y1, x0:x1].astype(np.float64) * a
