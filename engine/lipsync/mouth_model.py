"""The mouth state: measured on the footage, and predicted for new speech.

A ridge regression, fitted on the footage, maps trajectory features and the sound's mel
cepstrum (each at several time lags) to this speaker's measured mouth state: it learns how
wide this person opens for an "aa", their resting mouth in pauses, and the footage's own
audio-visual lag. The cepstrum carries what the recognised phones miss (a phone recogniser
gets many phones wrong; the spectrum of the voice is always there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..speech import CEPSTRUM_COEFFICIENTS
from .library import (
    CLOSED_APERTURE,
    K_APERTURE,
    K_CHIN,
    K_CORNERS,
    K_LIP_BOTTOM,
    K_LIP_TOP,
    K_SUBNASALE,
    Library,
)

# Trajectory features (per frame) the mouth-state model reads, at these frame lags.
MODEL_LAGS_SECONDS = (-0.067, 0.0, 0.067, 0.133, 0.2, 0.267)
# … and the sound's mel cepstrum at these: the mouth shapes a sound ~0.1 s before it is heard
CEPSTRUM_LAGS_SECONDS = (0.0, 0.1, 0.2)
RIDGE = 100.0
MIN_MODEL_FRAMES = 120

VISEME_CLASSES = {
    "sil": 0, "PP": 1, "FF": 2, "TH": 3, "DD": 3, "kk": 3, "nn": 3, "SS": 3,
    "CH": 4, "RR": 4, "ou": 4, "oh": 5, "aa": 5, "E": 6, "ih": 6,
}
VISEME_CLASS_COUNT = max(VISEME_CLASSES.values()) + 1
# per frame: six trajectory parameters, log loudness, depth in a pause, viseme class one-hot
TRAJECTORY_FEATURES = 6 + 2 + VISEME_CLASS_COUNT


def measure_state(points: np.ndarray, iod: float) -> np.ndarray:
    """(…, 4) aperture, width, lip height, jaw drop from canonical KEPT landmarks."""
    p = np.asarray(points, np.float32)
    gaps = [np.linalg.norm(p[..., b, :] - p[..., a, :], axis=-1) for a, b in K_APERTURE]
    aperture = np.mean(gaps, axis=0) / iod
    width = np.linalg.norm(p[..., K_CORNERS[1], :] - p[..., K_CORNERS[0], :], axis=-1) / iod
    height = np.linalg.norm(p[..., K_LIP_BOTTOM, :] - p[..., K_LIP_TOP, :], axis=-1) / iod
    jaw = (p[..., K_CHIN, 1] - p[..., K_SUBNASALE, 1]) / iod
    return np.stack([aperture, width, height, jaw], axis=-1).astype(np.float32)


def _quantile_map(values: np.ndarray, reference: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``values`` linearly so the reference's 5th/95th percentiles land on low/high."""
    if reference.size == 0:
        return np.full(values.shape, (low + high) / 2, np.float32)
    p5, p95 = np.percentile(reference, [5, 95])
    span = max(p95 - p5, 1e-6)
    return np.clip(low + (values - p5) / span * (high - low), 0.0, 1.0).astype(np.float32)


def trajectory_params(state: np.ndarray, teeth: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The trajectory's six parameters (jaw, width, round, closure, tuck, teeth) as measured."""
    ref = state[usable] if usable.any() else state
    aperture = state[:, 0]
    jaw = np.clip(aperture / max(float(np.percentile(ref[:, 0], 97)) if len(ref) else 0.2, 0.05), 0.0, 1.0)
    width = _quantile_map(state[:, 1], ref[:, 1], 0.2, 0.8)
    # Rounded lips: narrow and tall for their width.
    roundness = state[:, 2] / np.maximum(state[:, 1], 1e-3)
    rnd = _quantile_map(roundness, roundness[usable] if usable.any() else roundness, 0.0, 0.8) * (width < 0.45)
    closure = np.clip(1.0 - aperture / CLOSED_APERTURE, 0.0, 1.0)
    tuck = np.zeros_like(jaw)
    teeth_param = _quantile_map(teeth, teeth[usable] if usable.any() else teeth, 0.0, 0.9)
    return np.stack([jaw, width, rnd, closure, tuck, teeth_param], axis=1).astype(np.float32)


def trajectory_features(trajectory, frame_count: int | None = None) -> np.ndarray:
    """Per-frame features of a ``visemes.Trajectory``: the six parameters, log loudness,
    closeness to silence, and the viseme's class as one-hot."""
    n = trajectory.frame_count if frame_count is None else frame_count
    params = trajectory.parameters()[:n].astype(np.float32)
    if len(params) < n:
        params = np.vstack([params, np.repeat(params[-1:], n - len(params), axis=0)]) if len(params) else np.zeros((n, 6), np.float32)
    labels = list(trajectory.visemes[:n]) + ["sil"] * max(0, n - len(trajectory.visemes))
    loud = trajectory.loudness if trajectory.loudness is not None else np.zeros(n, np.float32)
    loud = np.asarray(loud, np.float32)[:n]
    if len(loud) < n:
        loud = np.pad(loud, (0, n - len(loud)))
    silent = np.array([label == "sil" for label in labels], np.float32)
    # seconds to the nearest non-silent frame, capped: how deep in a pause the frame is
    speaking = np.flatnonzero(silent == 0)
    if len(speaking):
        positions = np.arange(n)
        nearest = np.searchsorted(speaking, positions).clip(0, len(speaking) - 1)
        before = np.abs(speaking[np.maximum(nearest - 1, 0)] - positions)
        after = np.abs(speaking[nearest] - positions)
        depth = np.minimum(np.minimum(before, after) / trajectory.fps, 0.6)
    else:
        depth = np.full(n, 0.6)
    classes = np.zeros((n, VISEME_CLASS_COUNT), np.float32)
    for i, label in enumerate(labels):
        classes[i, VISEME_CLASSES.get(label, 0)] = 1.0
    return np.column_stack([params, np.log(loud + 1e-3), depth, classes]).astype(np.float32)


def _lagged(features: np.ndarray, fps: float, lags: Sequence[float] = MODEL_LAGS_SECONDS) -> np.ndarray:
    n = len(features)
    columns = []
    for seconds in lags:
        lag = int(round(seconds * fps))
        index = np.clip(np.arange(n) + lag, 0, max(n - 1, 0))
        columns.append(features[index])
    return np.concatenate(columns, axis=1)


def model_inputs(trajectory, frame_count: int | None = None, *, cepstrum: bool = True) -> np.ndarray:
    """The mouth-state model's input per frame: lagged trajectory features and, unless
    ``cepstrum`` is False (libraries prepared before the model heard the sound itself), the
    lagged mel cepstrum of the driving audio."""
    n = trajectory.frame_count if frame_count is None else frame_count
    x = _lagged(trajectory_features(trajectory, n), trajectory.fps)
    if not cepstrum:
        return x
    spectrum = np.zeros((n, CEPSTRUM_COEFFICIENTS), np.float32)
    if trajectory.cepstrum is not None:
        known = trajectory.cepstrum[:n]
        spectrum[: len(known)] = known
    return np.hstack([x, _lagged(spectrum, trajectory.fps, CEPSTRUM_LAGS_SECONDS)])


def model_inputs_width() -> int:
    """Columns of ``model_inputs`` with the cepstrum (older libraries' models have fewer)."""
    return TRAJECTORY_FEATURES * len(MODEL_LAGS_SECONDS) + CEPSTRUM_COEFFICIENTS * len(CEPSTRUM_LAGS_SECONDS)


def fit_model(inputs: np.ndarray, state: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Ridge regression model inputs → standardized mouth state."""
    x = inputs[rows]
    y = state[rows]
    x_mean, x_std = x.mean(axis=0), x.std(axis=0) + 1e-4
    y_mean, y_std = y.mean(axis=0), y.std(axis=0) + 1e-4
    xs = np.column_stack([(x - x_mean) / x_std, np.ones(len(x))])
    ys = (y - y_mean) / y_std
    reg = RIDGE * np.eye(xs.shape[1])
    reg[-1, -1] = 0.0
    weights = np.linalg.solve(xs.T @ xs + reg, xs.T @ ys)
    fitted = xs @ weights
    r = [float(np.corrcoef(fitted[:, d], ys[:, d])[0, 1]) if ys[:, d].std() > 1e-6 else 0.0 for d in range(ys.shape[1])]
    return {
        "weights": weights.astype(np.float32),
        "x_mean": x_mean.astype(np.float32),
        "x_std": x_std.astype(np.float32),
        "y_mean": y_mean.astype(np.float32),
        "y_std": y_std.astype(np.float32),
        "fit_r": np.array(r, np.float32),
    }


def exact_timing(trajectory) -> bool:
    """True for a trajectory with exact phoneme times (a script through espeak), False for
    one recognised from recorded speech (PocketSphinx's ARPAbet phones)."""
    if trajectory.words:
        return True
    labels = [p.phoneme for p in trajectory.phonemes if p.phoneme not in ("_", "SIL")]
    return not labels or not all(label.isupper() for label in labels)


def predict_state(library: Library, trajectory) -> np.ndarray:
    """The mouth state (T, 4) this speaker would show for each trajectory frame.

    For recognised speech, the footage's own model: trained on trajectories recognised
    from the footage's sound, it knows how this speaker moves for such input — including
    the recogniser's habits and the footage's audio-visual lag. A script's trajectory has
    exact times and clean shapes the model never saw; it is mapped onto the speaker's own
    range of mouth shapes directly, in sync with the sound.
    """
    model = library.model
    if "weights" in model and not exact_timing(trajectory):
        heard = len(model["x_mean"]) == model_inputs_width()
        x = model_inputs(trajectory, cepstrum=heard)
        xs = np.column_stack([(x - model["x_mean"]) / model["x_std"], np.ones(len(x))])
        return (xs @ model["weights"]) * model["y_std"] + model["y_mean"]
    # Too little footage for a model: scale the trajectory's jaw onto the measured range.
    features = trajectory_features(trajectory)
    usable = library.state[library.usable] if library.usable.any() else library.state
    low, high = np.percentile(usable, [3, 97], axis=0)
    out = np.repeat(((low + high) / 2)[None, :], len(features), axis=0)
    jaw = features[:, 0]
    out[:, 0] = low[0] + jaw * (high[0] - low[0])
    out[:, 2] = low[2] + jaw * (high[2] - low[2])
    out[:, 3] = low[3] + jaw * (high[3] - low[3])
    out[:, 1] = low[1] + features[:, 1] * (high[1] - low[1])
    return out.astype(np.float32)
