"""The evaluation's metric functions: plain numpy, tested on known inputs.

Series: ``pearson``, ``lagged_correlation``, ``best_lag``, ``second_difference_jitter``.
Pixels: ``psnr``, ``psnr_from_mse``, ``squared_error``, ``dilated_mask``. Lip closures:
``closed_threshold``, ``closure_runs``, ``closure_checks``, ``closed_share``. Landmarks:
``Canonical`` (one face frame fitted on ``face.EVALUATION_RIGID_INDICES``), ``lip_distance``,
``aperture_of``. Sharpness: ``face_halves``, ``laplacian_variance``, ``face_sharpness``,
``sharpness_ratio``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .. import face
from ..face import EVALUATION_RIGID_INDICES, similarity_transform

PSNR_CAP_DB = 100.0  # identical pixels: reported as the cap (JSON has no infinity)
MAX_LAG_FRAMES = 5
PBM_TOLERANCE_S = 0.040
PBM_PHONES = frozenset({"P", "B", "M"})
MASK_DILATION_PX = 10


def pearson(a: Iterable[float], b: Iterable[float]) -> float:
    """Pearson r over the pairs where both are finite; NaN if either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denominator = math.sqrt(float((a * a).sum() * (b * b).sum()))
    if denominator < 1e-12:
        return math.nan
    return float((a * b).sum() / denominator)


def lagged_correlation(signal: np.ndarray, reference: np.ndarray, lag: int) -> float:
    """r of ``signal[t + lag]`` with ``reference[t]`` (positive lag: the signal comes later)."""
    signal, reference = np.asarray(signal, np.float64), np.asarray(reference, np.float64)
    n = min(len(signal), len(reference))
    if lag >= 0:
        return pearson(signal[lag:n], reference[: n - lag])
    return pearson(signal[: n + lag], reference[-lag:n])


def best_lag(signal, reference, max_lag: int = MAX_LAG_FRAMES) -> tuple[int | None, float]:
    """The lag in [-max_lag, max_lag] maximising ``lagged_correlation``, and that r.

    Ties go to the smallest |lag|. ``(None, nan)`` when no lag gives a defined r.
    """
    best: tuple[int | None, float] = (None, -math.inf)
    for lag in sorted(range(-max_lag, max_lag + 1), key=lambda v: (abs(v), v)):
        r = lagged_correlation(signal, reference, lag)
        if math.isfinite(r) and r > best[1] + 1e-12:
            best = (lag, r)
    return best if best[0] is not None else (None, math.nan)


def psnr_from_mse(mse: float, peak: float = 255.0, cap: float = PSNR_CAP_DB) -> float:
    if mse <= 0:
        return cap
    return float(min(cap, 10.0 * math.log10(peak * peak / mse)))


def squared_error(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, int]:
    """(sum of squared differences, number of values) over the pixels where ``keep`` is true."""
    diff = a.astype(np.float32) - b.astype(np.float32)
    if keep is not None:
        diff = diff[keep]
    return float(np.square(diff, dtype=np.float64).sum() if diff.size else 0.0), int(diff.size)


def psnr(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images over ``keep`` (HxW bool); identical → the cap."""
    total, count = squared_error(a, b, keep)
    return psnr_from_mse(total / count if count else 0.0)


def dilated_mask(mask: np.ndarray | None, radius: int = MASK_DILATION_PX, shape=None) -> np.ndarray:
    """Bool HxW: pixels where ``mask`` > 0, grown by ``radius`` px (a disc); all False for None."""
    if mask is None:
        return np.zeros(shape[:2], dtype=bool)
    import cv2

    touched = (np.asarray(mask) > 1e-3).astype(np.uint8)
    if radius > 0 and touched.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        touched = cv2.dilate(touched, kernel)
    return touched.astype(bool)


def second_difference_jitter(sequence: np.ndarray) -> float:
    """Mean norm of x[t+1] − 2x[t] + x[t−1] over points and the triples with no gap (NaN)."""
    x = np.asarray(sequence, np.float64)  # frames × points × 2
    if len(x) < 3:
        return math.nan
    acc = x[2:] - 2 * x[1:-1] + x[:-2]
    norms = np.linalg.norm(acc, axis=-1).mean(axis=-1)
    norms = norms[np.isfinite(norms)]
    return float(norms.mean()) if norms.size else math.nan


def closed_threshold(apertures: np.ndarray) -> tuple[float, float, float]:
    """(threshold, closed level, open level) from a real footage's aperture distribution."""
    values = np.asarray(apertures, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan, math.nan
    closed, opened = np.percentile(values, [2, 98])
    return float(closed + max(0.15 * (opened - closed), 0.02)), float(closed), float(opened)


def closure_runs(apertures: np.ndarray, threshold: float) -> int:
    """Number of separate runs of frames whose aperture is under ``threshold``."""
    below = np.asarray(apertures, np.float64) < threshold  # NaN (no face) counts as open
    return int(below[0]) + int((below[1:] & ~below[:-1]).sum()) if below.size else 0


@dataclass
class ClosureCheck:
    start: float
    end: float
    phone: str
    closed: bool | None  # None: no frame with a face inside the window
    min_aperture: float


def closure_checks(
    events, apertures: np.ndarray, fps: float, threshold: float, tolerance: float = PBM_TOLERANCE_S
) -> list[ClosureCheck]:
    """For each P/B/M event: is some frame within ±tolerance of it under ``threshold``?"""
    apertures = np.asarray(apertures, np.float64)
    times = np.arange(len(apertures)) / fps
    checks = []
    for event in events:
        if event.phoneme.upper() not in PBM_PHONES:
            continue
        inside = (times >= event.start - tolerance - 1e-9) & (times <= event.end + tolerance + 1e-9)
        values = apertures[inside]
        values = values[np.isfinite(values)]
        if values.size == 0:
            checks.append(ClosureCheck(event.start, event.end, event.phoneme, None, math.nan))
            continue
        low = float(values.min())
        checks.append(ClosureCheck(event.start, event.end, event.phoneme, low < threshold, low))
    return checks


def closed_share(checks: list[ClosureCheck]) -> float:
    judged = [c.closed for c in checks if c.closed is not None]
    return float(np.mean(judged)) if judged else math.nan


# ----------------------------------------------------------------------------- landmarks


def lip_indices() -> np.ndarray:
    return np.asarray(face.LIP_INDICES)


def aperture_of(landmarks: np.ndarray | None) -> float:
    return math.nan if landmarks is None else float(face.mouth_aperture(landmarks))


def inter_ocular_of(landmarks: np.ndarray) -> float:
    return float(face.inter_ocular(landmarks))


class Canonical:
    """Maps landmarks into one face frame: rigid points fitted to a reference, io = 1."""

    def __init__(self, reference: np.ndarray):
        rigid = np.asarray(reference, np.float64)[EVALUATION_RIGID_INDICES]
        scale = inter_ocular_of(reference)
        self.reference = (rigid - rigid.mean(0)) / max(scale, 1e-6)

    def __call__(self, landmarks: np.ndarray | None) -> np.ndarray | None:
        if landmarks is None:
            return None
        rigid = np.asarray(landmarks)[EVALUATION_RIGID_INDICES]
        matrix = similarity_transform(rigid, self.reference, dtype=np.float64)
        return face.apply_transform(matrix, landmarks, dtype=np.float64)


def lip_distance(a: np.ndarray | None, b: np.ndarray | None, lips: np.ndarray) -> float:
    """Mean distance between two canonical landmark sets' lip points (io units)."""
    if a is None or b is None:
        return math.nan
    return float(np.linalg.norm(a[lips] - b[lips], axis=-1).mean())


# ----------------------------------------------------------------------------- sharpness

# The upper face: the face oval from cheek to cheek over the forehead, closed under the nose
# (what lip sync never touches); the lower face: the jaw line closed under the nose (the
# region the compositor replaces).
UPPER_FACE = np.concatenate([[93, 234, 127, 162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389, 356, 454],
                             face.UNDER_NOSE_INDICES])
LOWER_FACE = np.concatenate([face.JAW_INDICES, face.UNDER_NOSE_INDICES[1:-1]])


def face_halves(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) face masks (bool H×W) from FaceMesh landmarks in pixels."""
    import cv2

    masks = []
    for polygon in (LOWER_FACE, UPPER_FACE):
        mask = np.zeros(shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(landmarks)[polygon, :2] * 4).astype(np.int32)], 1, shift=2)
        masks.append(mask.astype(bool))
    return masks[0], masks[1]


def laplacian_variance(gray: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the 3×3 Laplacian of ``gray`` (uint8 or float) over ``mask``: fine detail."""
    import cv2

    if not mask.any():
        return math.nan
    laplacian = cv2.Laplacian(np.asarray(gray, np.float32), cv2.CV_32F, ksize=3)
    return float(laplacian[mask].var())


def face_sharpness(rgb: np.ndarray, landmarks: np.ndarray | None) -> float:
    """Laplacian variance of the lower face ÷ the upper face of one frame (NaN without a face).

    A ratio within the frame, so the video's overall softness (its encoding, focus, size)
    cancels; what is left is how much detail the lower face keeps next to the upper face."""
    if landmarks is None:
        return math.nan
    import cv2

    gray = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2GRAY)
    lower, upper = face_halves(landmarks, gray.shape)
    top = laplacian_variance(gray, upper)
    if not math.isfinite(top) or top <= 1e-6:
        return math.nan
    return laplacian_variance(gray, lower) / top


def sharpness_ratio(rendered: Iterable[float], footage: Iterable[float]) -> float:
    """The rendered frames' median ``face_sharpness`` ÷ the footage's own: 1 when lip sync
    keeps the lower face exactly as sharp, relative to the untouched upper face, as recorded;
    under 1 when the pasted mouth is softer. Medians, so frames are compared as a whole (an
    open mouth in one and a closed one in the other shows more or less teeth)."""
    rendered = np.asarray(list(rendered), np.float64)
    footage = np.asarray(list(footage), np.float64)
    rendered, footage = rendered[np.isfinite(rendered)], footage[np.isfinite(footage)]
    if rendered.size == 0 or footage.size == 0:
        return math.nan
    own = float(np.median(footage))
    return float(np.median(rendered)) / own if own > 0 else math.nan
