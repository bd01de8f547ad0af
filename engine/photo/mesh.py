"""The lower face as a triangle mesh, and where its points go for one mouth shape.

Vertices: FaceMesh's 468 points, two rings round the face oval (the neck, ears and hair
that must stretch with the jaw so the neck line stays continuous) and fixed points on the
animated box's edge. Triangles come from a Delaunay triangulation of a *virtually opened*
mouth (the lower inner lip moved down a little), less the triangles inside that opening, so
that no triangle ever spans the lips: a closed-mouth photo opens along its inner-lip line.

Each vertex carries weights, measured once (``MeshWeights``):

- ``jaw``: how far it follows the jaw. The jaw rotates about the temporo-mandibular joint,
  behind the jaw angle: seen from the front a point drops in proportion to how far *forward*
  of the joint it sits (FaceMesh's depth), so the lower lip and chin drop fully, the jaw
  contour less and less towards its angle, and the cheeks beside the mouth in between.
  Along the lips the drop follows a lens (corners 25 %), as lips part in the middle first.
- ``raise_``: the upper lip's lift (teeth showing), fading up to the nose.
- ``spread``: sideways motion for lip width and rounding, largest at the corners.
- ``upper_body``/``lower_body``: the red of each lip, for pressing, pouting and tucking.
- ``closing``: the offset that closes an open-mouthed photo (its rest is closed lips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import FACE_OVAL

FACE_POINTS = 468
# FaceMesh's points inside each lip, between its inner and outer contours: near the corners
# they can sit on the wrong side of the line between the lips, so each belongs by name.
UPPER_LIP_BODY = np.array([76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306,
                           62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292])
LOWER_LIP_BODY = np.array([77, 90, 180, 85, 16, 315, 404, 320, 307, 96, 89, 179, 86, 15, 316, 403, 319, 325])
RING_SCALES = (1.3, 1.75)
# How far the neck under the chin follows the chin (first ring; the second stays put).
NECK_FOLLOW = 0.5
LENS_CORNER = 0.25
OPEN_FOR_TRIANGULATION = 0.5  # of the lower lip's thickness


@dataclass
class MeshWeights:
    jaw: np.ndarray
    raise_: np.ndarray
    spread: np.ndarray  # signed: x / half mouth width, faded away from the lips
    upper_body: np.ndarray
    lower_body: np.ndarray
    closing: np.ndarray  # (N, 2) face-frame offset closing the photo's mouth


@dataclass
class Mesh:
    points: np.ndarray  # (N, 2) photo pixels
    face_xy: np.ndarray  # (N, 2) the same in the face frame
    triangles: np.ndarray  # (T, 3) vertex indices, only those that can move
    weights: MeshWeights
    upper_inner: np.ndarray  # vertex indices, corner → corner along the top
    lower_inner: np.ndarray  # vertex indices, corner → corner along the bottom


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _inside(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path as PolyPath

    return PolyPath(polygon).contains_points(points)


def build_mesh(rig) -> Mesh:
    from scipy.spatial import Delaunay

    from .rig import LOWER_INNER, LOWER_OUTER, UPPER_INNER, UPPER_OUTER

    frame = rig.frame
    lm = rig.landmarks
    face = lm[:FACE_POINTS, :2]
    oval = face[FACE_OVAL]
    centre = oval.mean(axis=0)
    rings = [centre + (oval - centre) * s for s in RING_SCALES]
    x0, y0, x1, y1 = rig.head_box()
    bx = np.linspace(x0, x1, 7)
    by = np.linspace(y0, y1, 7)
    border = np.concatenate([np.stack([bx, np.full_like(bx, y0)], 1), np.stack([bx, np.full_like(bx, y1)], 1),
                             np.stack([np.full_like(by[1:-1], x0), by[1:-1]], 1),
                             np.stack([np.full_like(by[1:-1], x1), by[1:-1]], 1)])
    points = np.concatenate([face, *rings, border])
    n_ring = len(oval)
    ring_index = [np.arange(FACE_POINTS + k * n_ring, FACE_POINTS + (k + 1) * n_ring) for k in range(len(rings))]
    xy = frame.to_face(points)

    # Triangulate with the mouth virtually opened, then drop the triangles inside it.
    virtual = xy.copy()
    opened = OPEN_FOR_TRIANGULATION * rig.lower_lip_thickness
    # Everything under the line between the lips moves down together, so nothing crosses.
    upper_in, lower_in = xy[UPPER_INNER], xy[LOWER_INNER[::-1]]
    mid = (upper_in + lower_in) / 2
    order = np.argsort(mid[:, 0])
    line_y = np.interp(xy[:, 0], mid[order, 0], mid[order, 1])
    below = (np.abs(xy[:, 0]) <= rig.mouth_half_width) & (xy[:, 1] > line_y)
    below[: FACE_POINTS] |= np.isin(np.arange(FACE_POINTS), np.concatenate([LOWER_INNER[1:-1], LOWER_OUTER[1:-1],
                                                                          LOWER_LIP_BODY]))
    below[np.concatenate([UPPER_INNER, UPPER_OUTER, UPPER_LIP_BODY])] = False
    virtual[below, 1] += opened
    triangles = Delaunay(virtual).simplices
    mouth = virtual[np.concatenate([UPPER_INNER, LOWER_INNER[1:-1]])]
    centroids = virtual[triangles].mean(axis=1)
    triangles = triangles[~_inside(mouth, centroids)]
    # Near the corners the opening is a sliver, and a triangle may join the two lips across
    # it: one with a vertex on each inner contour would smear one lip over the other.
    on_upper = np.isin(triangles, UPPER_INNER[1:-1]).any(axis=1)
    on_lower = np.isin(triangles, LOWER_INNER[1:-1]).any(axis=1)
    triangles = triangles[~(on_upper & on_lower)]

    w = _weights(rig, points, xy, ring_index)
    moving = (np.abs(w.jaw) + np.abs(w.raise_) + np.abs(w.spread) + w.upper_body + w.lower_body
              + np.abs(w.closing).sum(axis=1)) > 1e-4
    triangles = triangles[moving[triangles].any(axis=1)]
    return Mesh(points=points.astype(np.float64), face_xy=xy, triangles=triangles.astype(np.int32), weights=w,
                upper_inner=np.asarray(UPPER_INNER), lower_inner=np.asarray(LOWER_INNER[::-1]))


def _weights(rig, points, xy, ring_index) -> MeshWeights:
    from .rig import INNER_PAIRS, LOWER_INNER, LOWER_OUTER, UPPER_INNER, UPPER_OUTER

    io, hw = rig.io, rig.mouth_half_width
    lm = rig.landmarks
    n = len(points)
    x, y = xy[:, 0], xy[:, 1]
    face_xy = xy[:FACE_POINTS]

    # The line between the lips (midline of the inner contours), corner to corner.
    upper_in, lower_in = face_xy[UPPER_INNER], face_xy[LOWER_INNER[::-1]]
    mid = (upper_in + lower_in) / 2
    order = np.argsort(mid[:, 0])
    line_y = np.interp(x, mid[order, 0], mid[order, 1])
    corner_y = np.interp(np.sign(x) * hw, mid[order, 0], mid[order, 1])
    uo, lo = face_xy[UPPER_OUTER], face_xy[LOWER_OUTER]
    upper_outer_y = np.interp(x, *uo[np.argsort(uo[:, 0])].T)
    lower_outer_y = np.interp(x, *lo[np.argsort(lo[:, 0])].T)

    # Membership of the mandible.
    inside_width = np.abs(x) <= hw
    beyond = np.maximum(np.abs(x) - hw, 0.0)
    lateral = _smoothstep((y - (corner_y - 0.05 * io - 0.2 * beyond)) / (0.25 * io + 0.6 * beyond))
    member = np.where(inside_width, (y > line_y).astype(np.float64), lateral)
    upper_set = np.concatenate([UPPER_INNER[1:-1], UPPER_OUTER[1:-1], UPPER_LIP_BODY])
    lower_set = np.concatenate([LOWER_INNER[1:-1], LOWER_OUTER[1:-1], LOWER_LIP_BODY])
    member[upper_set] = 0.0
    member[lower_set] = 1.0
    member[[61, 291, 78, 308]] = 1.0  # the corners drop a little (the lens below)

    # Lever: forward of the jaw joint, from FaceMesh's depth (smaller z = nearer the camera).
    z = lm[:, 2]
    z_joint = float(np.mean(z[[93, 323, 132, 361]]))
    z_lip = float(z[14])
    lever_face = np.clip((z_joint - z[:FACE_POINTS]) / max(z_joint - z_lip, 1e-6), 0.0, 1.15)
    lever = np.zeros(n)
    lever[:FACE_POINTS] = lever_face
    for k, ring in enumerate(ring_index):
        lever[ring] = lever_face[FACE_OVAL] * (NECK_FOLLOW if k == 0 else 0.0)
        member[ring] = member[FACE_OVAL]

    # The lips part in the middle first: a lens along the lips, the chin below moves whole.
    lens = LENS_CORNER + (1 - LENS_CORNER) * np.sqrt(np.clip(1 - (x / max(hw, 1e-6)) ** 2, 0, 1))
    below_lip = np.maximum(y - lower_outer_y, 0.0)
    lipness = np.where(np.abs(x) <= 1.2 * hw, 1 - _smoothstep(below_lip / (0.3 * io)), 0.0)
    jaw = member * lever * (lipness * lens + (1 - lipness))
    jaw[FACE_POINTS:][np.abs(jaw[FACE_POINTS:]) < 1e-6] = 0.0

    # The upper lip's lift, fading up to the nose and out to the corners.
    nose_y = float(np.mean(face_xy[[2, 164], 1]))
    across = np.sqrt(np.clip(1 - (x / (1.1 * hw)) ** 2, 0, 1))
    raise_ = np.where(y < line_y, _smoothstep((y - nose_y) / max(upper_outer_y.mean() - nose_y, 1e-6)), 0.0) * across
    raise_[FACE_POINTS:] = 0.0
    raise_[np.concatenate([UPPER_INNER[1:-1], UPPER_OUTER[1:-1]])] = across[np.concatenate([UPPER_INNER[1:-1], UPPER_OUTER[1:-1]])]

    # Width and rounding: sideways, most at the corners, fading out from the lips.
    thick = (rig.upper_lip_thickness + rig.lower_lip_thickness) / 2 + rig.photo_gap / 2
    radius = np.sqrt((x / max(hw, 1e-6)) ** 2 + (y / max(thick * 1.3, 1e-6)) ** 2)
    spread = np.clip(x / max(hw, 1e-6), -1.2, 1.2) * np.exp(-(np.maximum(radius - 1, 0) / 0.7) ** 2)
    spread[FACE_POINTS:] *= 0.0

    # The red of each lip (pressing, pouting, tucking): 0 on the inner contour, 1 on the
    # outer one, in between through the lip, fading out over the skin beyond.
    ui, li = face_xy[UPPER_INNER], face_xy[LOWER_INNER]
    upper_inner_y = np.interp(x, *ui[np.argsort(ui[:, 0])].T)
    lower_inner_y = np.interp(x, *li[np.argsort(li[:, 0])].T)
    t_up = (upper_inner_y - y) / np.maximum(upper_inner_y - upper_outer_y, 1e-3)
    t_low = (y - lower_inner_y) / np.maximum(lower_outer_y - lower_inner_y, 1e-3)
    near = np.abs(x) < hw
    upper_body = np.where(near & (y < line_y), np.where(t_up <= 1, np.clip(t_up, 0, 1),
                          np.exp(-((upper_outer_y - y) / (0.12 * io)) ** 2)), 0.0)
    lower_body = np.where(near & (y > line_y), np.where(t_low <= 1, np.clip(t_low, 0, 1),
                          np.exp(-((y - lower_outer_y) / (0.15 * io)) ** 2)), 0.0)
    upper_body[FACE_POINTS:] = 0.0
    lower_body[FACE_POINTS:] = 0.0
    upper_body[UPPER_INNER] = 0.0
    lower_body[LOWER_INNER] = 0.0

    # Closing the photo's own opening: the lower lip meets the upper one at rest.
    closing = np.zeros((n, 2))
    closing[:, 1] = -rig.photo_gap * jaw
    for top, bottom in INNER_PAIRS:
        closing[bottom] = face_xy[top] - face_xy[bottom]
    return MeshWeights(jaw=jaw, raise_=raise_, spread=spread, upper_body=upper_body, lower_body=lower_body,
                       closing=closing)


@dataclass
class MouthPose:
    """One frame's mouth, in face-frame pixels (from the trajectory's six parameters)."""

    gap: float  # the lips' opening at the middle
    raise_: float  # the upper lip's lift
    spread: float  # corner displacement as a share of the half mouth width (+ wider)
    press: float
    pout: float
    tuck: float
    teeth: float
    tongue: float  # 0 low in the mouth … 1 tip up behind the teeth


# The opening of a fully open jaw ("aa"), in inter-ocular distances: about 15 mm between the
# lips for a 90 mm eye span in conversational speech.
GAP_PER_JAW = 0.20
TONGUE_UP = {"DD": 1.0, "nn": 0.9, "TH": 0.8, "RR": 0.4, "SS": 0.4, "kk": 0.2}


def pose_from(params: dict, io: float) -> MouthPose:
    jaw, width, rnd = float(params["jaw"]), float(params["width"]), float(params["round"])
    closure, tuck, teeth = float(params["closure"]), float(params["tuck"]), float(params["teeth"])
    open_ = 1.0 - closure
    gap = GAP_PER_JAW * io * max(jaw, 0.0) * open_
    raise_ = (0.15 * gap + 0.03 * io * teeth) * open_
    return MouthPose(gap=gap, raise_=raise_, spread=(width - 0.5) * 0.30 - rnd * 0.18, press=closure, pout=rnd,
                     tuck=tuck, teeth=teeth, tongue=TONGUE_UP.get(str(params.get("viseme", "")), 0.0))


def vertex_offsets(mesh: Mesh, pose: MouthPose, rig) -> np.ndarray:
    """(N, 2) face-frame displacement of every vertex for ``pose``."""
    w = mesh.weights
    tu, tl, hw = rig.upper_lip_thickness, rig.lower_lip_thickness, rig.mouth_half_width
    drop = pose.gap - pose.raise_
    dy = (drop * w.jaw - pose.raise_ * w.raise_
          + pose.press * (0.12 * tu * w.upper_body - 0.12 * tl * w.lower_body)
          + pose.pout * (-0.12 * tu * w.upper_body + 0.12 * tl * w.lower_body)
          - pose.tuck * 0.45 * tl * w.lower_body)
    dx = pose.spread * hw * w.spread
    offsets = np.stack([dx, dy], axis=1) + w.closing
    # Lips meet, they never pass through each other (tucking, pressing on a closed mouth).
    moved = mesh.face_xy + offsets
    top, bottom = mesh.upper_inner[1:-1], mesh.lower_inner[1:-1]
    overlap = np.minimum(moved[bottom, 1] - moved[top, 1], 0.0)
    offsets[bottom, 1] -= overlap
    return offsets
