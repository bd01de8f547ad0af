"""The mouth state: measured on the footage, and predicted for new speech.

Two predictors. The speaker-independent one serves every voice, in any language: the
trajectory's jaw (visemes shaped by loudness, plus the loudness itself where phones were
only recognised) mapped so this person rests in pauses and opens, during speech, exactly as
wide as in their own footage. The per-avatar one is a ridge regression fitted on the
footage that maps trajectory features (at several lags) and the sound's mel cepstrum
(averaged over windows ahead) to the measured mouth state; it knows this recording's sound,
so it is used only for voices that sound like it (``own_voice_share``), and where
cross-validation on the footage finds the sound's loudness alone a better guide, a
loudness-only model of the same kind speaks instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..speech import CEPSTRUM_COEFFICIENTS, voice_distance
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
# … and the sound's mel cepstrum averaged over these windows ahead: the mouth shapes a sound
# ~0.1 s before it is heard. Averaging every frame of a window (rather than sampling a frame
# every 0.1 s) hears all of the lookahead with fewer, steadier columns.
CEPSTRUM_WINDOWS_SECONDS = ((0.0, 0.1), (0.1, 0.2))
# Libraries prepared before read the cepstrum at these single lags and the viseme class too.
LEGACY_CEPSTRUM_LAGS_SECONDS = (0.0, 0.1, 0.2)
RIDGE = 100.0
MIN_MODEL_FRAMES = 120
# A voice this close to the footage's own recording (dB of long-term spectrum) is "its own";
# beyond FOREIGN_VOICE_DB it is another voice or microphone (``own_voice_share``).
OWN_VOICE_DB, FOREIGN_VOICE_DB = 3.0, 5.0
# Recognised phones are often wrong (always, in languages the recogniser does not know), the
# loudness never is: this share of the opening follows the voice's loudness directly.
RECOGNISED_LOUDNESS_SHARE = 0.4
CALIBRATION_QUANTILES = (5.0, 25.0, 50.0, 75.0, 90.0, 99.0)
MIN_CALIBRATION_FRAMES = 25

VISEME_CLASSES = {
    "sil": 0, "PP": 1, "FF": 2, "TH": 3, "DD": 3, "kk": 3, "nn": 3, "SS": 3,
    "CH": 4, "RR": 4, "ou": 4, "oh": 5, "aa": 5, "E": 6, "ih": 6,
}
VISEME_CLASS_COUNT = max(VISEME_CLASSES.values()) + 1
# per frame: six trajectory parameters, log loudness, depth in a pause (the model's inputs);
# libraries prepared before also read the viseme class one-hot
TRAJECTORY_FEATURES = 6 + 2
LEGACY_TRAJECTORY_FEATURES = TRAJECTORY_FEATURES + VISEME_CLASS_COUNT


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


def _pooled(features: np.ndarray, fps: float, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Per frame, the mean of ``features`` over each window of seconds ahead (clipped at the ends)."""
    n = len(features)
    total = np.vstack([np.zeros((1, features.shape[1])), np.cumsum(features, axis=0, dtype=np.float64)])
    frames = np.arange(n)
    columns = []
    for first, last in windows:
        lo = np.clip(frames + int(round(first * fps)), 0, n - 1)
        hi = np.clip(frames + int(round(last * fps)), lo, n - 1) + 1
        columns.append((total[hi] - total[lo]) / (hi - lo)[:, None])
    return np.concatenate(columns, axis=1).astype(np.float32)


# The model's input layouts, told apart by their width: (trajectory columns, cepstrum).
LAYOUT_CURRENT = "current"
LAYOUT_LEGACY_HEARD = "legacy-heard"
LAYOUT_LEGACY = "legacy"


def model_inputs(trajectory, frame_count: int | None = None, *, layout: str = LAYOUT_CURRENT) -> np.ndarray:
    """The mouth-state model's input per frame: lagged trajectory features and the driving
    audio's mel cepstrum averaged over windows ahead. Recognised viseme classes are left out:
    they are often wrong, and with a few hundred frames to learn from, a one-hot per class
    and lag taught the model this recording's recognition errors (held-out r 0.53–0.54 with
    them and the cepstrum at single lags, 0.57–0.64 as here, on every split of the clip we
    have: docs/quality.md). ``layout`` rebuilds the inputs of
    libraries prepared before (``model_layout``)."""
    n = trajectory.frame_count if frame_count is None else frame_count
    features = trajectory_features(trajectory, n)
    if layout == LAYOUT_CURRENT:
        features = features[:, :TRAJECTORY_FEATURES]
    x = _lagged(features, trajectory.fps)
    if layout == LAYOUT_LEGACY:
        return x
    spectrum = np.zeros((n, CEPSTRUM_COEFFICIENTS), np.float32)
    if trajectory.cepstrum is not None:
        known = trajectory.cepstrum[:n]
        spectrum[: len(known)] = known
    if layout == LAYOUT_LEGACY_HEARD:
        return np.hstack([x, _lagged(spectrum, trajectory.fps, LEGACY_CEPSTRUM_LAGS_SECONDS)])
    return np.hstack([x, _pooled(spectrum, trajectory.fps, CEPSTRUM_WINDOWS_SECONDS)])


def model_inputs_width(layout: str = LAYOUT_CURRENT) -> int:
    """Columns of ``model_inputs`` in ``layout``."""
    lags = len(MODEL_LAGS_SECONDS)
    if layout == LAYOUT_LEGACY:
        return LEGACY_TRAJECTORY_FEATURES * lags
    if layout == LAYOUT_LEGACY_HEARD:
        return LEGACY_TRAJECTORY_FEATURES * lags + CEPSTRUM_COEFFICIENTS * len(LEGACY_CEPSTRUM_LAGS_SECONDS)
    return TRAJECTORY_FEATURES * lags + CEPSTRUM_COEFFICIENTS * len(CEPSTRUM_WINDOWS_SECONDS)


def model_layout(model: dict) -> str | None:
    """Which input layout a library's fitted model reads (None: none we can rebuild)."""
    width = len(model["x_mean"])
    return next((layout for layout in (LAYOUT_CURRENT, LAYOUT_LEGACY_HEARD, LAYOUT_LEGACY)
                 if model_inputs_width(layout) == width), None)


def _ridge(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
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


def _apply(model: dict[str, np.ndarray], x: np.ndarray, prefix: str = "") -> np.ndarray:
    xs = np.column_stack([(x - model[prefix + "x_mean"]) / model[prefix + "x_std"], np.ones(len(x))])
    return (xs @ model[prefix + "weights"]) * model[prefix + "y_std"] + model[prefix + "y_mean"]


# Cross-validation on the footage: contiguous blocks, each predicted by a model fitted on the
# rest minus a gap as wide as the inputs' reach (0.27 s ahead is 8 frames at 30 fps), so a
# block's own frames never leak into its model through the lags.
CV_FOLDS = 5
CV_GAP_FRAMES = 8


def _cross_validated_r(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    """Pearson r of the aperture predicted for each block of ``rows`` by a model fitted without it."""
    predicted = np.full(len(rows), np.nan)
    edges = np.linspace(0, len(rows), CV_FOLDS + 1).astype(int)
    for first, last in zip(edges[:-1], edges[1:]):
        if last <= first:
            continue
        lo, hi = rows[first] - CV_GAP_FRAMES, rows[last - 1] + CV_GAP_FRAMES
        train = rows[(rows < lo) | (rows > hi)]
        if len(train) < MIN_MODEL_FRAMES // 2:
            continue
        predicted[first:last] = _apply(_ridge(x[train], y[train]), x[rows[first:last]])[:, 0]
    ok = np.isfinite(predicted)
    if ok.sum() < 10 or predicted[ok].std() < 1e-9 or y[rows[ok], 0].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(predicted[ok], y[rows[ok], 0])[0, 1])


def _loudness_columns() -> np.ndarray:
    """The current layout's columns that hear only how loud the sound is (log loudness and
    depth in a pause, at every lag)."""
    starts = np.arange(len(MODEL_LAGS_SECONDS)) * TRAJECTORY_FEATURES
    return np.sort(np.concatenate([starts + 6, starts + 7]))


def fit_model(inputs: np.ndarray, state: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Ridge regression model inputs → standardized mouth state.

    With the current inputs, also a loudness-only model of the same kind, and both models'
    cross-validated r on the footage: where the full model does worse than loudness alone
    (recognised phones that mean nothing for this recording, too little footage), renders use
    the loudness model (``predict_state``), so the mouth is never worse than the simplest
    baseline as far as the footage can tell."""
    rows = np.asarray(rows)
    model = _ridge(inputs[rows], state[rows])
    if inputs.shape[1] == model_inputs_width(LAYOUT_CURRENT):
        loud = _loudness_columns()
        model["cv_r"] = np.float32(_cross_validated_r(inputs, state, rows))
        model["loudness_cv_r"] = np.float32(_cross_validated_r(inputs[:, loud], state, rows))
        model.update({"loudness_" + key: value for key, value in _ridge(inputs[rows][:, loud], state[rows]).items()})
    return model


def uses_loudness_model(model: dict[str, np.ndarray]) -> bool:
    """Did cross-validation on the footage find loudness alone a better guide than the full model?"""
    if "loudness_weights" not in model:
        return False
    full, loud = float(model["cv_r"]), float(model["loudness_cv_r"])
    return bool(np.isfinite(loud) and (not np.isfinite(full) or loud > full))


def exact_timing(trajectory) -> bool:
    """True for a trajectory with exact phoneme times (a script through espeak), False for
    one recognised from recorded speech (PocketSphinx's ARPAbet phones)."""
    if trajectory.words:
        return True
    labels = [p.phoneme for p in trajectory.phonemes if p.phoneme not in ("_", "SIL")]
    return not labels or not all(label.isupper() for label in labels)


def own_voice_share(footage_signature: np.ndarray | None, voice_signature: np.ndarray | None) -> float:
    """How much a voice sounds like the footage's own recording: 1 the same, 0 another.

    The per-avatar model learnt this recording's sound (voice, microphone, room); for anything
    else its guesses of *when* the mouth opens are noise, so it only speaks for voices within
    a few dB of long-term spectrum of the footage's own (stretches of one recording measure
    about 1–4 dB apart, different recordings 4–16 dB).
    """
    distance = voice_distance(footage_signature, voice_signature)
    if distance is None:
        return 0.0
    return float(np.clip((FOREIGN_VOICE_DB - distance) / (FOREIGN_VOICE_DB - OWN_VOICE_DB), 0.0, 1.0))


def predict_state(library: Library, trajectory) -> np.ndarray:
    """The mouth state (T, 4) this speaker would show for each trajectory frame.

    Every voice gets the speaker-independent mouth: the trajectory's jaw (visemes, shaped by
    loudness) mapped onto this person's own range — at rest in pauses, and opening during
    speech as wide as they do in their footage. A voice that sounds like the footage's own
    recording (self-reenactment, more footage of the same session) is predicted by the
    footage's own model instead: trained on trajectories recognised from that sound, it knows
    how this speaker moves for it, including the recogniser's habits and the recording's
    audio-visual lag. A script has exact phoneme times and always takes the first path. Where
    cross-validation on the footage found the model worse than the sound's loudness alone,
    the footage's loudness-only model speaks instead (``fit_model``).
    """
    model = library.model
    if "weights" not in model or exact_timing(trajectory):
        return speaker_independent_state(library, trajectory)
    own = own_voice_share(model.get("voice_signature"), getattr(trajectory, "voice_signature", None))
    if own <= 0.0:
        return speaker_independent_state(library, trajectory)
    layout = model_layout(model)
    if layout is None:
        return speaker_independent_state(library, trajectory)
    x = model_inputs(trajectory, layout=layout)
    if layout == LAYOUT_CURRENT and uses_loudness_model(model):
        learned = _apply(model, x[:, _loudness_columns()], "loudness_")
    else:
        learned = _apply(model, x)
    if own >= 1.0:
        return learned.astype(np.float32)
    return (own * learned + (1.0 - own) * speaker_independent_state(library, trajectory)).astype(np.float32)


def speaker_independent_state(library: Library, trajectory) -> np.ndarray:
    """The mouth state from the trajectory alone, calibrated to this person's own mouth.

    The opening is a monotone map of the trajectory's jaw (blended with the voice's own
    normalised loudness where the phones were only recognised, not known) such that, during
    speech, its quantiles are the footage's own during speech, and a closed jaw (pauses) is
    the person's rest. Width, lip height and jaw drop follow within their measured ranges.
    """
    features = trajectory_features(trajectory)
    n = len(features)
    labels = list(trajectory.visemes[:n]) + ["sil"] * max(0, n - len(trajectory.visemes))
    speaking = np.array([label != "sil" for label in labels])
    jaw = features[:, 0].astype(np.float64)
    if not exact_timing(trajectory) and speaking.any():
        jaw = np.where(speaking, (1 - RECOGNISED_LOUDNESS_SHARE) * jaw + RECOGNISED_LOUDNESS_SHARE
                       * _normalised_loudness(trajectory, n, speaking), jaw)

    usable = library.usable if library.usable.any() else np.ones(len(library.state), bool)
    state = library.state
    footage_speaking = usable & (library.visemes > 0)
    footage_pausing = usable & (library.visemes == 0)
    if footage_speaking.sum() < MIN_CALIBRATION_FRAMES:  # footage without usable speech
        footage_speaking = usable
    rest_source = state[footage_pausing, 0] if footage_pausing.sum() >= MIN_CALIBRATION_FRAMES else state[usable, 0]
    rest = float(np.percentile(rest_source, 10))
    footage_open = np.percentile(state[footage_speaking, 0], CALIBRATION_QUANTILES)
    track_open = np.percentile(jaw[speaking], CALIBRATION_QUANTILES) if speaking.sum() >= 5 else np.array(
        CALIBRATION_QUANTILES, np.float64) / 100.0
    # Knots from a shut jaw to this voice's widest: strictly increasing, so np.interp is a map.
    x = np.concatenate([[0.0], np.maximum(track_open, 1e-3)])
    x = np.maximum.accumulate(x + np.arange(len(x)) * 1e-6)
    y = np.maximum.accumulate(np.concatenate([[rest], np.maximum(footage_open, rest)]))
    aperture = np.interp(jaw, x, y)

    low, high = np.percentile(state[usable], [3, 97], axis=0)
    relative = np.clip((aperture - low[0]) / max(high[0] - low[0], 1e-6), 0.0, 1.0)
    out = np.empty((n, 4), np.float32)
    out[:, 0] = aperture
    out[:, 1] = low[1] + features[:, 1] * (high[1] - low[1])
    out[:, 2] = low[2] + relative * (high[2] - low[2])
    out[:, 3] = low[3] + relative * (high[3] - low[3])
    return out


def _normalised_loudness(trajectory, n: int, speaking: np.ndarray) -> np.ndarray:
    """The voice's log loudness per frame, 0 at its quiet speech and 1 at its loud speech."""
    if trajectory.loudness is None:
        return np.zeros(n)
    loud = np.log(np.asarray(trajectory.loudness, np.float64)[:n] + 1e-4)
    if len(loud) < n:
        loud = np.pad(loud, (0, n - len(loud)), constant_values=loud.min() if len(loud) else 0.0)
    quiet, strong = np.percentile(loud[speaking], [10, 95])
    return np.clip((loud - quiet) / max(strong - quiet, 1e-6), 0.0, 1.0)
