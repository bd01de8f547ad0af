"""Dense backward maps: the piecewise-affine mesh warp, the eyelids, and the head's movement.

``cv2.remap`` wants, for every output pixel, where to read in the photo. The mesh gives that
exactly, triangle by triangle: each moved triangle is rasterised (its index drawn into an
index image), and every pixel it covers applies that triangle's output → photo affine map.
Only the box round the moving triangles is touched, so a 720p frame costs a few
milliseconds. The maps are kept as *displacements* over the animated box (zero where
nothing moves), so the eyelids and the head's motion compose with them by one resampling.
"""

from __future__ import annotations

import numpy as np

SUBPIXEL_BITS = 4


def triangle_affines(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """(T, 2, 3): for each triangle (corners ``dst`` (T, 3, 2)), the affine map taking its
    output corners to its photo corners ``src``; the identity for a degenerate triangle.
    Closed form: a batched LAPACK solve costs more than the rest of the frame."""
    d1, d2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]
    s1, s2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    ok = np.abs(det) > 1e-2  # a triangle squeezed flat has no usable inverse
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # D⁻¹ for D = [d1 d2] (columns); the linear part is S · D⁻¹.
    i00, i01 = d2[:, 1] * inv_det, -d2[:, 0] * inv_det
    i10, i11 = -d1[:, 1] * inv_det, d1[:, 0] * inv_det
    out = np.zeros((len(dst), 2, 3))
    for row in range(2):
        out[:, row, 0] = s1[:, row] * i00 + s2[:, row] * i10
        out[:, row, 1] = s1[:, row] * i01 + s2[:, row] * i11
    out[:, :, 2] = src[:, 0] - np.einsum("tij,tj->ti", out[:, :, :2], dst[:, 0])
    out[~ok] = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return out


def mesh_displacement(points_src: np.ndarray, points_dst: np.ndarray, triangles: np.ndarray,
                      box: tuple[int, int, int, int], field: np.ndarray):
    """Write into ``field`` (box-sized (h, w, 2) float32, box origin at ``box[:2]``) the
    photo-minus-output displacement of every pixel a moved triangle covers.

    Returns the window written, (x0, y0, x1, y1) in photo pixels, or None."""
    import cv2

    x0, y0, x1, y1 = box
    moved = np.abs(points_dst - points_src).max(axis=1) > 0.02
    tris = triangles[moved[triangles].any(axis=1)]
    if not len(tris):
        return None
    dst = points_dst[tris]
    src = points_src[tris]
    lo = np.floor(dst.reshape(-1, 2).min(axis=0)).astype(int) - 1
    hi = np.ceil(dst.reshape(-1, 2).max(axis=0)).astype(int) + 2
    lo = np.maximum(lo, (x0, y0))
    hi = np.minimum(hi, (x1, y1))
    if (hi <= lo).any():
        return None
    # Triangle k is drawn as k + 1; 0 (nothing drawn) reads the identity below.
    index = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.int32)
    scale = 1 << SUBPIXEL_BITS
    corners = np.round((dst - lo) * scale).astype(np.int32)
    for k in range(len(tris)):
        cv2.fillConvexPoly(index, corners[k], k + 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    # Pixels on an edge two triangles share can fall to neither: give each such crack its
    # neighbour's triangle (its affine map extends smoothly across the edge). What remains
    # uncovered is the mouth's opening, which ``mouth.render_mouth`` paints over.
    grown = cv2.dilate(index.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    index = np.where(index == 0, grown, index)
    # In window coordinates, so the constant terms stay small in float32.
    local_dst = dst - lo
    local_src = src - lo
    a = triangle_affines(local_dst, local_src)
    a[:, 0, 0] -= 1.0
    a[:, 1, 1] -= 1.0  # displacement = (A - I) · p
    # One row per coefficient (x: gx factor, gy factor, constant; then y's), so each is
    # gathered with ``take`` into a contiguous image (fancy indexing costs four times as much).
    coeffs = np.concatenate([np.zeros((1, 6)), a.reshape(-1, 6)]).T.astype(np.float32)
    gx = np.arange(hi[0] - lo[0], dtype=np.float32)[None, :]
    gy = np.arange(hi[1] - lo[1], dtype=np.float32)[:, None]
    target = field[lo[1] - y0:hi[1] - y0, lo[0] - x0:hi[0] - x0]
    # No pixel moves further than the vertices do: a sliver triangle's extreme affine map
    # must not fetch a pixel from across the picture.
    reach = np.float32(np.abs(points_dst - points_src).max() + 1.0)
    channels = []
    for first in (0, 3):
        value = coeffs[first].take(index)
        value *= gx
        value += coeffs[first + 1].take(index) * gy
        value += coeffs[first + 2].take(index)
        channels.append(value)
    np.clip(cv2.merge(channels), -reach, reach, out=target)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def eyelid_displacement(field: np.ndarray, box: tuple[int, int, int, int], eye: dict, closure: float) -> None:
    """Close one eye by ``closure`` (0 open … 1 shut): the upper lid's skin stretches down over
    the eye to the lower lid; the lid's edge (and its lashes) ends up there.

    ``eye``: ``xs`` (columns, photo pixels), ``upper``/``lower`` (the lid lines per column,
    equal beyond the corners) and ``top`` (where the stretch starts, under the brow)."""
    if closure <= 1e-3:
        return
    x0, y0, x1, y1 = box
    xs, upper, lower, top = eye["xs"], eye["upper"], eye["lower"], eye["top"]
    c0, c1 = int(max(xs[0], x0)), int(min(xs[-1] + 1, x1))
    r0, r1 = int(max(np.floor(top.min()), y0)), int(min(np.ceil(lower.max()) + 1, y1))
    if c1 <= c0 or r1 <= r0:
        return
    cols = np.arange(c0, c1)
    up = np.interp(cols, xs, upper)
    low = np.interp(cols, xs, lower)
    tp = np.interp(cols, xs, top)
    shut = up + closure * (low - up)  # the lid's edge now
    rows = np.arange(r0, r1, dtype=np.float32)[:, None]
    # Above the new edge: the lid's margin (its lashes) slides down whole, so the lash line
    # stays thin; the skin between ``top`` and the margin stretches to follow it.
    margin = 0.3 * (up - tp)
    stretch = (up - margin - tp) / np.maximum(shut - margin - tp, 1e-3)
    skin = (rows >= tp) & (rows <= shut - margin)
    lashes = (rows > shut - margin) & (rows <= shut)
    src_y = np.where(skin, tp + (rows - tp) * stretch, np.where(lashes, rows - (shut - up), rows))
    dy = (src_y - rows).astype(np.float32)
    block = field[r0 - y0:r1 - y0, c0 - x0:c1 - x0, 1]
    field[r0 - y0:r1 - y0, c0 - x0:c1 - x0, 1] = np.where(dy != 0, dy, block)


class HeadMotion:
    """The head's small rotation and shift as a backward displacement over the animated box:
    whole above the chin, fading to nothing down the neck and at the box's edges, so the
    shoulders and the frame's edges stay put."""

    def __init__(self, box: tuple[int, int, int, int], pivot: np.ndarray, chin: np.ndarray, fade: float,
                 down_axis: np.ndarray) -> None:
        x0, y0, x1, y1 = box
        h, w = y1 - y0, x1 - x0
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.dx = gx - np.float32(pivot[0])
        self.dy = gy - np.float32(pivot[1])
        # Distance below the chin along the face's own down direction.
        down = (gx - np.float32(chin[0])) * np.float32(down_axis[0]) + (gy - np.float32(chin[1])) * np.float32(down_axis[1])
        weight = 1.0 - _smooth(np.clip(down / fade, 0, 1))
        margin = max(4.0, 0.08 * min(h, w))
        ex = np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5)[None, :]
        ey = np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5)[:, None]
        edge = _smooth(np.clip(np.minimum(ex, ey) / margin, 0, 1))
        self.weight = (weight * edge).astype(np.float32)
        # The displacement is linear in these three per frame: weighted once, here.
        self.weighted_dx = self.weight * self.dx
        self.weighted_dy = self.weight * self.dy

    def displacement(self, angle_deg: float, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Backward (photo − output) displacement for a rotation by ``angle_deg`` about the
        pivot and a ``shift`` (pixels): the first-order inverse, exact to a hundredth of a
        pixel at these angles."""
        import cv2

        a = np.deg2rad(angle_deg)
        c, s = float(np.cos(a) - 1.0), float(np.sin(a))
        wx, wy, w = self.weighted_dx, self.weighted_dy, self.weight
        hx = cv2.scaleAdd(w, -float(shift[0]), cv2.addWeighted(wx, -c, wy, s, 0.0))
        hy = cv2.scaleAdd(w, -float(shift[1]), cv2.addWeighted(wx, -s, wy, -c, 0.0))
        return hx, hy


def _smooth(x):
    return x * x * (3 - 2 * x)
