"""FaceMesh's 478 landmarks (468 + refined lips/eyes/irises): index tables and measures.

The named point sets (lips, rigid points, jaw line …), the mouth and eye measures on a
face's landmarks, its yaw, and the 2-D similarity transforms that align faces by them.
"""

from __future__ import annotations

import math

import numpy as np

MESH_POINTS = 478
EYE_OUTER = (33, 263)  # outer eye corners, image-left then image-right
# Lip contours, each in drawing order (corner → along the top → corner → along the bottom).
LIP_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146])
LIP_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95])
LIP_INDICES = np.concatenate([LIP_OUTER, LIP_INNER])
# Points that move with the skull, not with the jaw or the lips: eye corners, nose bridge
# and dorsum, forehead, the nose's wings. The tracker and the renderer align faces by them.
RIGID_INDICES = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 8, 98, 327, 129, 358])
# The lip-sync evaluation's own rigid points (eye corners, nose ridge and tip, forehead,
# temples) for its canonical face frame: chosen apart from the renderer's, so the measure
# does not share the renderer's alignment, and fixed, so its figures stay comparable.
EVALUATION_RIGID_INDICES = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 127, 356])
# The jaw line from the image-left cheek (level with the nose) round the chin to the right.
JAW_INDICES = np.array([93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323])
# Under the nose, right to left of the image: the top edge of the lower face.
UNDER_NOSE_INDICES = np.array([323, 423, 327, 326, 2, 97, 98, 203, 93])
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                      152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109])
# Upper/lower inner-lip pairs at the middle and a third of the way to each corner.
APERTURE_PAIRS = ((13, 14), (82, 87), (312, 317))


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners, in the landmarks' units."""
    a, b = landmarks[EYE_OUTER[0], :2], landmarks[EYE_OUTER[1], :2]
    return float(np.hypot(*(b - a)))


def mouth_aperture(landmarks: np.ndarray) -> float:
    """Inner-lip vertical gap (mean of the middle and two side pairs) / inter-ocular distance."""
    gaps = [np.hypot(*(landmarks[lower, :2] - landmarks[upper, :2])) for upper, lower in APERTURE_PAIRS]
    return float(np.mean(gaps) / max(inter_ocular(landmarks), 1e-6))


def similarity_transform(src: np.ndarray, dst: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """The 2×3 similarity (rotation, uniform scale, shift) taking ``src`` points closest to ``dst``
    in least squares (Umeyama without reflection), as ``dtype`` (float32 for OpenCV and the
    renderer; float64 where it is a measurement)."""
    src = np.asarray(src, np.float64)[:, :2]
    dst = np.asarray(dst, np.float64)[:, :2]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    var = (a**2).sum()
    if var < 1e-12:
        return np.array([[1.0, 0.0, mu_d[0] - mu_s[0]], [0.0, 1.0, mu_d[1] - mu_s[1]]], dtype)
    # For 2-D similarities, the optimum has a closed form in complex numbers.
    sa, sb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    z = (np.conj(sa) * sb).sum() / var
    m = np.array([[z.real, -z.imag], [z.imag, z.real]])
    shift = mu_d - m @ mu_s
    return np.array([[m[0, 0], m[0, 1], shift[0]], [m[1, 0], m[1, 1], shift[1]]], dtype)


def apply_transform(matrix: np.ndarray, points: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """``matrix`` (2×3) applied to the x, y of ``points``, computed in ``dtype``."""
    points = np.asarray(points, dtype)
    return points[..., :2] @ matrix[:, :2].T + matrix[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine transform (closed form: no LAPACK call per frame)."""
    m = np.asarray(matrix, np.float64)
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    if abs(det) < 1e-12:
        raise ValueError("the transform is not invertible")
    inv = np.array([[d, -b], [-c, a]]) / det
    shift = -inv @ m[:, 2]
    return np.array([[inv[0, 0], inv[0, 1], shift[0]], [inv[1, 0], inv[1, 1], shift[1]]], np.float32)


def landmark_yaw(landmarks: np.ndarray) -> float:
    """Head yaw in degrees from the nose tip's place between the cheek contours (as
    ``estimate_yaw``, with FaceMesh's points 234/454 for the ears)."""
    left, right, nose = landmarks[234, 0], landmarks[454, 0], landmarks[1, 0]
    span = right - left
    if abs(span) < 1e-6:
        return 90.0
    r = (nose - left) / span
    return math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * r - 1.0))))
