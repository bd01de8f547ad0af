"""Video avatars: the per-avatar mouth library, and lip sync by unit selection.

No neural lip-sync weights are available, so the mouth a render shows is always one the
creator really made in their footage (data-driven, like Video Rewrite and unit-selection
visual speech synthesis), chosen to follow the mouth trajectory of the new speech.

Preparation (``build_library``) tracks the face in every frame with FaceMesh and stores, per
frame: the similarity transform from the rigid points (eyes, nose bridge, forehead) to a
canonical face, the lip, jaw and under-nose landmarks in canonical space, mouth-state
measures (aperture, width, lip height, jaw drop — and the same six parameters as
``visemes.Trajectory``), head pose, a 16-number appearance code of the canonical mouth crop,
and the viseme heard in the footage's own audio at that frame. Frames where the face is
missing, too turned, or the mouth looks occluded are marked unusable. Everything goes into
one compressed ``.npz`` of NumPy arrays; the mouth crops themselves live in it as one small
H.264 stream (the "atlas", ~1 KB a frame) so renders never seek in the full-size footage.

A ridge regression, fitted on the footage, maps trajectory features and the sound's mel
cepstrum (each at several time lags) to this speaker's measured mouth state: it learns how
wide this person opens for an "aa", their resting mouth in pauses, and the footage's own
audio-visual lag. The cepstrum carries what the recognised phones miss (a phone recogniser
gets many phones wrong; the spectrum of the voice is always there).

Rendering (``synthesize_frames``) chooses one source frame per output frame by Viterbi over
candidate units (target cost: distance to the predicted mouth state + viseme-context
mismatch + pose mismatch with the background frame + a reuse penalty; join cost: 0 for
consecutive source frames, else lip-landmark and appearance distance), in windows of two
seconds with lookahead, so source reads are mostly sequential. The chosen lower face is
warped onto the background frame with the frames' transforms plus a small displacement
toward the target lip shape (lips pressed together for every p/b/m), blended with a
feathered mask that covers both chins, colour-matched in Lab on a ring around the mask
(smoothed over time), and cross-faded for a frame at non-consecutive joins. All pixel work
happens on the region of interest of the decoded YUV planes: untouched pixels are copied,
frames with no usable face or inside a disabled interval pass through as decoded.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from . import media
from .errors import Cancelled, EngineError, InputRejected
from .face import (
    APERTURE_PAIRS,
    EYE_OUTER,
    JAW_INDICES,
    LIP_INDICES,
    LIP_INNER,
    LIP_OUTER,
    RIGID_INDICES,
    UNDER_NOSE_INDICES,
    FaceTracker,
    YuvRegions,
    apply_transform,
    invert_transform,
    landmark_yaw,
    similarity_transform,
    yuv_planes,
)
from .speech import CEPSTRUM_COEFFICIENTS

LIBRARY_SUFFIX = ".npz"
LIBRARY_VERSION = 2

# Landmarks kept per frame (canonical space): lips, jaw line, under the nose, rigid points.
KEPT = np.unique(np.concatenate([LIP_INDICES, JAW_INDICES, UNDER_NOSE_INDICES, RIGID_INDICES,
                                 [1, 2, 152, 168, 234, 454]]))
_POS = {int(index): i for i, index in enumerate(KEPT)}


def _k(indices) -> np.ndarray:
    return np.array([_POS[int(i)] for i in np.atleast_1d(indices)])


K_LIPS = _k(LIP_INDICES)
K_INNER = _k(LIP_INNER)
K_OUTER = _k(LIP_OUTER)
K_JAW = _k(JAW_INDICES)
K_UNDER_NOSE = _k(UNDER_NOSE_INDICES)
K_RIGID = _k(RIGID_INDICES)
K_APERTURE = [(_POS[a], _POS[b]) for a, b in APERTURE_PAIRS]
K_CHIN, K_SUBNASALE = _POS[152], _POS[2]
K_CORNERS = _k([61, 291])
K_LIP_TOP, K_LIP_BOTTOM = _POS[0], _POS[17]

# Canonical face: eye midpoint at the origin, eyes level, CANON_IOD pixels between the outer
# eye corners (the footage's own median size, within these bounds: small enough to stay
# fast, large enough to keep the teeth sharp).
CANON_IOD_MIN, CANON_IOD_MAX = 48.0, 128.0
# The canonical mouth crop, in inter-ocular units around the eye midpoint: from below the
# eyes to well below the chin (the jaw drops ~0.3 when the mouth opens wide).
CROP_X = (-0.95, 0.95)
CROP_Y = (0.30, 1.90)
ATLAS_GOP = 4  # frames between keyframes in the atlas: a jump decodes at most this many
ATLAS_CRF = 17

MAX_YAW = 35.0  # degrees: beyond this a frame is "too turned" to use or to change
# Robust z-scores of a frame's mouth-crop reconstruction error (PCA of the footage's mouths)
OCCLUDED_Z = 14.0  # beyond: the mouth is covered; the frame passes through untouched
UNUSUAL_Z = 6.0  # beyond: not used as a unit
CLOSED_APERTURE = 0.035  # inner-lip gap / IOD below which lips count as closed
OPEN_APERTURE = 0.12  # … and above which the mouth counts as open (for the report)
# mouth state per frame: aperture, width, lip height, jaw drop (inter-ocular units)
STATE_WEIGHTS = np.array([1.0, 0.35, 0.45, 0.5], np.float32)
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
VISEME_ORDER = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")

ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]


# --------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------


def _affine3(m: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])


def _kabsch_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R (3×3) that best maps centred point set ``a`` onto ``b`` (R @ a_i ≈ b_i)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    h = a.T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def _euler(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation matrix (y down, x right, z away)."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def _colour_matrix(frame) -> int:
    return 709 if media._source_colorspace(frame) == 1 else 601


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


@dataclass
class PreparationReport:
    total_frames: int
    usable_frames: int
    viseme_coverage: dict[str, int]
    head_motion: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    open_frames: int = 0
    closed_frames: int = 0
    av_offset_ms: float = 0.0  # how far the footage's sound lags its mouth (+: sound later)
    seconds: float = 0.0  # wall time the preparation took

    def to_dict(self) -> dict:
        data = asdict(self)
        data["head_motion"] = {k: round(float(v), 2) for k, v in self.head_motion.items()}
        data["av_offset_ms"] = round(float(self.av_offset_ms), 1)
        data["seconds"] = round(float(self.seconds), 2)
        return data


# --------------------------------------------------------------------------------------
# The library file
# --------------------------------------------------------------------------------------


@dataclass
class Library:
    meta: dict
    ok: np.ndarray  # (n,) bool: the face is tracked, frontal enough and the mouth visible
    usable: np.ndarray  # (n,) bool: a unit the renderer may pick (inside [start, end) too)
    transform: np.ndarray  # (n, 2, 3) frame pixels → canonical pixels
    points: np.ndarray  # (n, len(KEPT), 2) canonical landmarks
    pose: np.ndarray  # (n, 3) yaw, pitch, roll in degrees relative to the footage's mean pose
    state: np.ndarray  # (n, 4) aperture, width, height, jaw (inter-ocular units)
    params: np.ndarray  # (n, 6) the trajectory's parameters as measured
    appearance: np.ndarray  # (n, 16) mouth appearance code
    visemes: np.ndarray  # (n,) int8 index into VISEME_ORDER, heard in the footage (-1 unknown)
    atlas_index: np.ndarray  # (n,) int32 frame in the atlas, -1 when none
    atlas: bytes
    model: dict[str, np.ndarray]

    @property
    def frame_count(self) -> int:
        return len(self.ok)

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def crop_size(self) -> tuple[int, int]:
        return int(self.meta["crop_width"]), int(self.meta["crop_height"])

    @property
    def crop_origin(self) -> tuple[float, float]:
        return float(self.meta["crop_x0"]), float(self.meta["crop_y0"])

    @property
    def iod(self) -> float:
        return float(self.meta["canon_iod"])

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Library":
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise EngineError("The avatar's mouth library is missing or damaged; prepare the avatar again.") from exc
        meta = json.loads(bytes(arrays.pop("meta")).decode("utf-8"))
        if meta.get("version") != LIBRARY_VERSION:
            raise EngineError("The avatar's mouth library is from an older version; prepare the avatar again.")
        model = {key[6:]: arrays.pop(key) for key in list(arrays) if key.startswith("model_")}
        return cls(
            meta=meta,
            ok=arrays["ok"].astype(bool),
            usable=arrays["usable"].astype(bool),
            transform=arrays["transform"].astype(np.float32),
            points=arrays["points"].astype(np.float32),
            pose=arrays["pose"].astype(np.float32),
            state=arrays["state"].astype(np.float32),
            params=arrays["params"].astype(np.float32),
            appearance=arrays["appearance"].astype(np.float32),
            visemes=arrays["visemes"].astype(np.int8),
            atlas_index=arrays["atlas_index"].astype(np.int32),
            atlas=arrays["atlas"].tobytes(),
            model=model,
        )

    def save(self, path: Path) -> None:
        arrays = {
            "meta": np.frombuffer(json.dumps(self.meta).encode("utf-8"), np.uint8),
            "ok": self.ok,
            "usable": self.usable,
            "transform": self.transform.astype(np.float32),
            "points": self.points.astype(np.float32),
            "pose": self.pose.astype(np.float16),
            "state": self.state.astype(np.float32),
            "params": self.params.astype(np.float16),
            "appearance": self.appearance.astype(np.float16),
            "visemes": self.visemes.astype(np.int8),
            "atlas_index": self.atlas_index.astype(np.int32),
            "atlas": np.frombuffer(self.atlas, np.uint8),
        }
        for key, value in self.model.items():
            arrays["model_" + key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


# --------------------------------------------------------------------------------------
# Mouth-state measures
# --------------------------------------------------------------------------------------


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


def _trajectory_params(state: np.ndarray, teeth: np.ndarray, usable: np.ndarray) -> np.ndarray:
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


def _fit_model(inputs: np.ndarray, state: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
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


# --------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------


class _Tick:
    def __init__(self, progress: ProgressFn | None, should_cancel: CancelFn | None):
        self.progress = media.ProgressThrottle(progress, "tracking")
        self.should_cancel = should_cancel
        self._last_check = -math.inf

    def __call__(self, fraction: float, *, force: bool = False) -> None:
        self.progress(fraction, force=force)
        if self.should_cancel is not None:
            now = time.monotonic()
            if force or now - self._last_check >= 0.25:
                self._last_check = now
                if self.should_cancel():
                    raise Cancelled("Preparation was cancelled.")


def _own_trajectory(video: Path, audio, start: float, end: float, fps: float):
    """The trajectory of the footage's own sound between ``start`` and ``end`` (or None)."""
    from . import speech, visemes

    if audio is None:
        try:
            samples, rate = speech.load_audio(video, sample_rate=16000), 16000
        except InputRejected:
            return None
    else:
        samples, rate = np.asarray(audio[0], np.float32), int(audio[1])
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
    first, last = int(round(start * rate)), int(round(end * rate))
    segment = samples[first:last]
    if len(segment) < rate // 2 or float(np.abs(segment).max(initial=0.0)) < 1e-4:
        return None
    return visemes.trajectory_from_audio(segment, rate, fps)


class OwnSpeech:
    """Recognises a source video's speech on a worker thread, aligned the way
    ``media.normalise_video`` aligns it (sample 0 at the first video frame), so the
    trajectory matches the normalised footage's frames. ``result(fps)`` waits for it; None
    when the video has no usable sound or the frame rate turned out different."""

    def __init__(self, source: Path):
        self._value: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(Path(source),), name="own-speech", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop early (preparation failed or was cancelled) and wait for the thread."""
        self._stop.set()
        self._thread.join()

    def _work(self, source: Path) -> None:
        from . import speech, visemes

        try:
            with media.open_input(source) as container:
                if not container.streams.video or not container.streams.audio:
                    return
                video, audio = container.streams.video[0], container.streams.audio[0]
                fps = float(media._standard_rate(video.average_rate or video.guessed_rate))
                offset = 0.0
                if video.start_time is not None and audio.start_time is not None:
                    offset = float(video.start_time * video.time_base) - float(audio.start_time * audio.time_base)
            samples = speech.load_audio(source, sample_rate=16000)
            shift = int(round(offset * 16000))
            samples = samples[shift:] if shift >= 0 else np.concatenate([np.zeros(-shift, np.float32), samples])
            if len(samples) < 8000 or float(np.abs(samples).max(initial=0.0)) < 1e-4:
                return
            self._value["fps"] = fps
            # decoded in a child process: this one's cores are busy tracking the face
            self._value["trajectory"] = visemes.trajectory_from_audio(samples, 16000, fps, local_share=0.0,
                                                                      stop=self._stop)
        except Exception:  # the library falls back to the normalised video's own track
            self._value.clear()

    def result(self, fps: float, check_cancel: Callable[[], None] | None = None):
        """Wait for the trajectory; ``check_cancel`` (raising ``Cancelled``) is called
        while waiting, and a cancel stops the recognition too."""
        while self._thread.is_alive():
            if check_cancel is not None:
                try:
                    check_cancel()
                except BaseException:
                    self.close()
                    raise
            self._thread.join(timeout=0.25)
        if abs(self._value.get("fps", -1.0) - fps) > 0.01:
            return None
        return self._value.get("trajectory")


def _canonical_template(points3d: np.ndarray, iod: float) -> np.ndarray:
    """Rigid points of one face placed in canonical space (eyes level, IOD ``iod``)."""
    eyes = points3d[list(EYE_OUTER), :2]
    m = similarity_transform(eyes, np.array([[-iod / 2, 0.0], [iod / 2, 0.0]]))
    return apply_transform(m, points3d[RIGID_INDICES, :2])


def _polygon_lower_face(points: np.ndarray) -> np.ndarray:
    """The lower face (canonical coords): jaw line from cheek to cheek, closed under the nose."""
    jaw = points[K_JAW]
    under = points[K_UNDER_NOSE]
    return np.concatenate([jaw, under[1:-1]])


ATLAS_RATE = 25  # the atlas's nominal frame rate (its frames are numbered, not timed)


class _AtlasWriter:
    """Canonical mouth crops, straight from the source's YUV planes into a small H.264 file:
    no B-frames and a keyframe every ATLAS_GOP frames, so any crop decodes after at most
    ATLAS_GOP - 1 others, each as soon as its packet is in."""

    def __init__(self, path: Path, width: int, height: int):
        import av

        self._av = av
        self.path = Path(path)
        self.width, self.height = width, height
        self.count = 0
        self.closed = False
        self.container = av.open(str(self.path), mode="w", format="mp4")
        stream = self.container.add_stream("libx264", rate=ATLAS_RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "preset": "superfast",
            "crf": str(ATLAS_CRF),
            "x264-params": f"keyint={ATLAS_GOP}:min-keyint={ATLAS_GOP}:scenecut=0:bframes=0",
        }
        self.stream = stream

    def add(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
        y, u, v = planes
        data = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(self.height * 3 // 2, self.width)
        # The source's own YUV values go in untouched, whatever matrix they were made with.
        frame = self._av.VideoFrame.from_ndarray(data, format="yuv420p")
        frame.pts = self.count
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.count += 1
        return self.count - 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.container.close()
            except Exception:  # already broken; the file is removed with its folder
                pass


def _warp_planes(planes, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp yuv420p planes with a luma-space affine ``matrix`` into a ``size`` (w, h) crop."""
    import cv2

    w, h = size
    y = cv2.warpAffine(planes[0], matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    half = _chroma_matrix(matrix)
    u = cv2.warpAffine(planes[1], half, (w // 2, h // 2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    v = cv2.warpAffine(planes[2], half, (w // 2, h // 2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return y, u, v


def _chroma_matrix(matrix: np.ndarray) -> np.ndarray:
    """The luma-space affine expressed between chroma planes (centre-sited 4:2:0 samples)."""
    to_luma = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
    to_chroma = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]])
    return (to_chroma @ _affine3(matrix) @ to_luma)[:2].astype(np.float32)


def _teeth_measure(y_crop: np.ndarray, inner: np.ndarray) -> float:
    """How much bright (teeth) shows inside the inner lips: bright share of the mouth opening."""
    import cv2

    mask = np.zeros(y_crop.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    inside = y_crop[mask > 0]
    if inside.size < 4:
        return 0.0
    reference = float(np.median(y_crop))
    return float((inside > reference + 12).mean()) * min(1.0, inside.size / 40.0)


class LibraryBuilder:
    """Builds a mouth library from frames handed to it one at a time (``add``), so it can ride
    along another pass over the footage (preparation feeds it the frames as
    ``media.normalise_video`` encodes them: one decode for both). ``finish`` writes the file.

    Frames must be yuv420p and upright, in order, numbered from 0; ``start``/``end`` (seconds)
    limit which frames become units.
    """

    def __init__(self, *, fps: float | None = None, start: float = 0.0, end: float | None = None,
                 reference: np.ndarray | None = None):
        self.fps = None if fps is None else float(fps)
        self.start, self.end = float(start), end
        self.first_unit = 0 if fps is None else max(0, int(round(start * self.fps)))
        self.last_unit = None if end is None or fps is None else int(round(end * self.fps))
        self.tracker = FaceTracker(reference=reference)
        self.kept: list[np.ndarray | None] = []
        self.transforms: list[np.ndarray] = []
        self.yaw: list[float] = []
        self.atlas_index: list[int] = []
        self.teeth: list[float] = []
        self.thumbs: list[np.ndarray] = []
        self.thumb_of: list[int] = []
        self.template: np.ndarray | None = None
        self.canon_iod: float | None = None
        self.crop = (0.0, 0.0, 0, 0)
        self.colour: int | None = None
        self.width = self.height = 0
        self._dir = Path(tempfile.mkdtemp(prefix="atlas-"))
        self.atlas_path = self._dir / "atlas.mp4"
        self.atlas_writer: _AtlasWriter | None = None
        self._identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)

    def _in_range(self, index: int) -> bool:
        return index >= self.first_unit and (self.last_unit is None or index < self.last_unit)

    def add(self, index: int, frame) -> None:
        self._record(*self._track(index, frame))

    def _track(self, index: int, frame):
        """Stage one: FaceMesh (sequential by nature: each frame starts from the last)."""
        if frame.format.name not in ("yuv420p", "yuvj420p"):
            frame = frame.reformat(format="yuv420p")
        regions = YuvRegions(frame)
        return index, frame, regions, self.tracker.track_regions(regions)

    def _record(self, index: int, frame, regions, points) -> None:
        """Stage two: the frame's transform, mouth crop (into the atlas) and measures."""
        import cv2

        while len(self.kept) < index:  # a frame the caller skipped: no face there
            self._append(None, self._identity, 0.0, -1, 0.0, -1)
        if index < len(self.kept):
            return
        if self.colour is None:
            self.colour = _colour_matrix(frame)
            self.width, self.height = frame.width, frame.height
        if points is None:
            self._append(None, self._identity, 0.0, -1, 0.0, -1)
            return
        if self.template is None:
            iod0 = float(np.linalg.norm(points[EYE_OUTER[1], :2] - points[EYE_OUTER[0], :2]))
            self.canon_iod = float(np.clip(iod0, CANON_IOD_MIN, CANON_IOD_MAX))
            self.template = _canonical_template(points, self.canon_iod)
            x0, y0 = CROP_X[0] * self.canon_iod, CROP_Y[0] * self.canon_iod
            w = int(round((CROP_X[1] - CROP_X[0]) * self.canon_iod / 2)) * 2
            h = int(round((CROP_Y[1] - CROP_Y[0]) * self.canon_iod / 2)) * 2
            self.crop = (x0, y0, w, h)
            self.atlas_writer = _AtlasWriter(self.atlas_path, w, h)
        m = similarity_transform(points[RIGID_INDICES, :2], self.template)
        yaw = landmark_yaw(points)
        atlas, teeth, thumb = -1, 0.0, -1
        if self._in_range(index) and abs(yaw) <= MAX_YAW:
            x0, y0, w, h = self.crop
            to_crop = m.copy()
            to_crop[:, 2] -= (x0, y0)
            crop = _warp_planes(regions.planes, to_crop, (w, h))
            atlas = self.atlas_writer.add(crop)
            teeth = _teeth_measure(crop[0], apply_transform(to_crop, points[LIP_INNER, :2]))
            thumb = len(self.thumbs)
            self.thumbs.append(cv2.resize(crop[0], (24, 20), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1))
        self._append(points[KEPT], m, yaw, atlas, teeth, thumb)

    def _append(self, kept, transform, yaw, atlas, teeth, thumb) -> None:
        self.kept.append(kept)
        self.transforms.append(transform)
        self.yaw.append(yaw)
        self.atlas_index.append(atlas)
        self.teeth.append(teeth)
        self.thumb_of.append(thumb)

    def finish(self, out: Path, *, trajectory=None, video: Path | None = None,
               audio: tuple[np.ndarray, int] | None = None, fps: float | None = None) -> PreparationReport:
        """Write the library. The viseme labels and the mouth-state model come from
        ``trajectory`` if given, else from ``audio`` (samples, rate), else from ``video``'s
        own sound track. ``fps`` is the footage's rate when the builder was made without it."""
        if fps is not None and self.fps is None:
            self.fps = float(fps)
            self.first_unit = max(0, int(round(self.start * self.fps)))
            self.last_unit = None if self.end is None else int(round(self.end * self.fps))
        if self.fps is None:
            raise EngineError("The library builder needs the footage's frame rate.")
        n = len(self.kept)
        last_unit = n if self.last_unit is None else min(self.last_unit, n)
        if last_unit - self.first_unit < 2:
            raise InputRejected("The library segment is empty; choose a start and end inside the video.",
                                field="segment", code="segment_empty")
        if self.atlas_writer is not None:
            self.atlas_writer.close()
        if trajectory is None and (audio is not None or video is not None):
            trajectory = _own_trajectory(video, audio, self.first_unit / self.fps, last_unit / self.fps, self.fps)
        kept = np.full((n, len(KEPT), 3), np.nan, np.float32)
        for i, value in enumerate(self.kept):
            if value is not None:
                kept[i] = value
        library, report = _assemble(
            n=n, fps=self.fps, width=self.width, height=self.height, kept=kept,
            transforms=np.asarray(self.transforms, np.float32), yaw_abs=np.asarray(self.yaw, np.float32),
            atlas_index=np.asarray(self.atlas_index, np.int32), teeth=np.asarray(self.teeth, np.float32),
            thumbs=self.thumbs, thumb_of=np.asarray(self.thumb_of, np.int32), canon_iod=self.canon_iod,
            crop=self.crop, first_unit=self.first_unit, last_unit=last_unit, trajectory=trajectory,
            colour=self.colour, atlas=self.atlas_path.read_bytes() if self.atlas_writer is not None else b"",
        )
        library.save(Path(out))
        return report

    # -- on a worker thread ------------------------------------------------------------------
    def start_worker(self, depth: int = 8) -> None:
        """Work on two threads from now on, a pipeline: one tracks (FaceMesh), the other
        records (crop, atlas encode, measures); ``submit`` queues frames (at most ``depth``
        waiting at each stage), ``join`` waits for the last one. FaceMesh, OpenCV and the
        encoder release the GIL, so both stages and whatever feeds the frames (the
        normaliser's decoder) run side by side on the cores."""
        import queue

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._tracked: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stopping = threading.Event()

        def stage(source: queue.Queue, step: Callable, sink: queue.Queue | None) -> Callable[[], None]:
            def work() -> None:
                while True:
                    item = source.get()
                    if item is None:
                        break
                    if self._error is None and not self._stopping.is_set():
                        try:
                            result = step(*item)
                            if sink is not None:
                                sink.put(result)
                        except BaseException as exc:  # reported by submit/join
                            self._error = exc
                if sink is not None:
                    sink.put(None)
            return work

        self._workers = [
            threading.Thread(target=stage(self._queue, self._track, self._tracked), name="tracking", daemon=True),
            threading.Thread(target=stage(self._tracked, self._record, None), name="recording", daemon=True),
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, index: int, frame) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((index, frame))

    def join(self) -> None:
        workers = getattr(self, "_workers", None)
        if not workers:
            return
        self._queue.put(None)
        for worker in workers:
            worker.join()
        self._workers = []
        if self._error is not None:
            raise self._error

    def _stop_worker(self) -> None:
        workers = getattr(self, "_workers", None)
        if workers and any(worker.is_alive() for worker in workers):
            import queue

            self._stopping.set()  # the stages skip what is left
            for pending in (self._queue, self._tracked):
                while True:
                    try:
                        pending.get_nowait()
                    except queue.Empty:
                        break
            self._queue.put(None)
            for worker in workers:
                worker.join()
        self._workers = []

    def close(self) -> None:
        """Release the tracker and the temporary atlas (safe to call more than once)."""
        self._stop_worker()
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        if self.atlas_writer is not None:
            self.atlas_writer.abort()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "LibraryBuilder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_library(
    video: Path,
    out: Path,
    *,
    start: float = 0.0,
    end: float | None = None,
    audio: tuple[np.ndarray, int] | None = None,
    reference: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> PreparationReport:
    """Track every frame of ``video`` and write the mouth library to ``out`` (``.npz``).

    Every frame gets its transform and landmarks (renders reuse them for the background
    frames and never run FaceMesh); only frames in ``[start, end)`` seconds become units the
    renderer may pick. ``audio`` (samples, rate) overrides the video's own sound track for
    the viseme labels and the mouth-state model. ``reference`` (an RGB photo) picks the
    person when several faces are in view. ``progress("tracking", fraction)`` and
    ``should_cancel()`` are called as frames go by. Returns the preparation report.
    """
    started = time.monotonic()
    video = Path(video)
    tick = _Tick(progress, should_cancel)
    tick(0.0, force=True)
    with media.VideoReader(video) as reader:
        if reader.rotation:
            raise EngineError("Normalise the video (rotation applied) before building its mouth library.")
        n = reader.frame_count
        first = int(round(start * reader.fps))
        last = n if end is None else min(n, int(round(end * reader.fps)))
        if last - first < 2 or first >= n:
            raise InputRejected("The library segment is empty; choose a start and end inside the video.",
                                field="segment", code="segment_empty")
        own: dict = {}
        # The footage's own speech → trajectory, on the second core while this one tracks.
        worker = threading.Thread(
            target=_safe_own_trajectory, args=(video, audio, first / reader.fps, last / reader.fps, reader.fps, own),
            daemon=True,
        )
        worker.start()
        cv2_threads = _single_threaded_cv2()
        with LibraryBuilder(fps=reader.fps, start=start, end=end, reference=reference) as builder:
            try:
                for index, frame in reader.iter_sequential():
                    if index >= n:
                        break
                    builder.add(index, frame)
                    tick(0.9 * (index + 1) / n)
            finally:
                worker.join()
                _restore_cv2(cv2_threads)
            if "error" in own:
                raise own["error"]
            report = builder.finish(Path(out), trajectory=own.get("trajectory"))
    tick(1.0, force=True)
    report.seconds = time.monotonic() - started
    return report


def _safe_own_trajectory(video, audio, start, end, fps, sink: dict) -> None:
    try:
        sink["trajectory"] = _own_trajectory(video, audio, start, end, fps)
    except BaseException as exc:  # handed to the main thread
        sink["error"] = exc


def _assemble(*, n, fps, width, height, kept, transforms, yaw_abs, atlas_index, teeth, thumbs, thumb_of, canon_iod,
              crop, first_unit, last_unit, trajectory, colour, atlas) -> tuple[Library, PreparationReport]:
    tracked = ~np.isnan(kept[:, 0, 0])
    if canon_iod is None or not tracked.any():
        raise InputRejected(
            "We couldn't follow a face in this video; record your face, well lit and facing the camera.",
            field="source", code="no_face_tracked",
        )
    crop_x0, crop_y0, crop_w, crop_h = crop
    points = np.zeros((n, len(KEPT), 2), np.float32)
    for i in np.flatnonzero(tracked):
        points[i] = apply_transform(transforms[i], kept[i, :, :2])

    # Head pose relative to the footage's median face (Kabsch on the rigid points in 3-D).
    rigid3 = kept[:, K_RIGID, :]
    seen = rigid3[tracked]
    mean_shape = np.median(seen - seen.mean(axis=1, keepdims=True), axis=0)
    pose = np.zeros((n, 3), np.float32)
    for i in np.flatnonzero(tracked):
        shape = rigid3[i] - rigid3[i].mean(axis=0)
        scale = np.sqrt((shape[:, :2] ** 2).sum() / max((mean_shape[:, :2] ** 2).sum(), 1e-9))
        pose[i] = _euler(_kabsch_rotation(mean_shape, shape / max(scale, 1e-9)))

    state = measure_state(points, canon_iod)
    units = (atlas_index >= 0) & tracked
    in_range = np.zeros(n, bool)
    in_range[first_unit:last_unit] = True

    # Appearance code: PCA of small canonical mouth thumbnails; an outlier (hand, mic, food
    # in front of the mouth) reconstructs badly and is marked occluded.
    appearance = np.zeros((n, 16), np.float32)
    occluded = np.zeros(n, bool)
    unusual = np.zeros(n, bool)
    if thumbs:
        thumb_matrix = np.stack(thumbs)
        mean = thumb_matrix.mean(axis=0)
        centred = thumb_matrix - mean
        k = min(16, len(thumbs) - 1) if len(thumbs) > 1 else 0
        if k > 0:
            _, singular, vt = np.linalg.svd(centred[:: max(1, len(thumbs) // 1500)], full_matrices=False)
            basis = vt[:k]
            codes = centred @ basis.T
            scale = singular[0] / math.sqrt(max(1, len(centred[:: max(1, len(thumbs) // 1500)])))
            residual = np.linalg.norm(centred - codes @ basis, axis=1)
            med = np.median(residual)
            mad = np.median(np.abs(residual - med)) + 1e-6
            z = (residual - med) / (1.4826 * mad)
            rows = np.flatnonzero(thumb_of >= 0)
            appearance[rows, :k] = codes[thumb_of[rows]] / max(scale, 1e-6)
            # Far out: something covers the mouth, leave the frame alone. Merely unusual (a
            # rare mouth shape, a glitch): keep it as a background, but not as a unit.
            occluded[rows] = z[thumb_of[rows]] > OCCLUDED_Z
            unusual[rows] = z[thumb_of[rows]] > UNUSUAL_Z
    frontal = np.abs(yaw_abs) <= MAX_YAW
    ok = tracked & frontal & ~occluded
    usable = ok & units & in_range & ~unusual

    teeth_all = teeth
    params = _trajectory_params(state, teeth_all, usable)

    # Visemes heard at each unit frame, and the mouth-state model.
    visemes = np.full(n, -1, np.int8)
    model: dict[str, np.ndarray] = {}
    offset_ms = 0.0
    if trajectory is not None:
        labels = list(trajectory.visemes[: last_unit - first_unit])
        for j, label in enumerate(labels):
            visemes[first_unit + j] = VISEME_ORDER.index(label) if label in VISEME_ORDER else -1
        rows = np.flatnonzero(usable[first_unit:last_unit])
        if len(rows) >= MIN_MODEL_FRAMES:
            model = _fit_model(model_inputs(trajectory, last_unit - first_unit), state[first_unit:last_unit], rows)
        offset_ms = _av_offset(trajectory, state[first_unit:last_unit, 0], usable[first_unit:last_unit], fps)

    usable_count = int(usable.sum())
    coverage = {name: int(((visemes == i) & usable).sum()) for i, name in enumerate(VISEME_ORDER)}
    # "open" is relative to the speaker's own resting mouth (some rest with lips apart)
    rest = float(np.percentile(state[usable, 0], 10)) if usable.any() else 0.0
    open_frames = int((usable & (state[:, 0] >= max(OPEN_APERTURE, rest + 0.08))).sum())
    closed_frames = int((usable & (state[:, 0] <= CLOSED_APERTURE)).sum())
    good = ok & tracked
    head = {"yaw_range": 0.0, "pitch_range": 0.0, "roll_range": 0.0, "shift_range": 0.0, "scale_range": 0.0}
    if good.sum() >= 2:
        lo, hi = np.percentile(pose[good], [5, 95], axis=0)
        head["yaw_range"], head["pitch_range"], head["roll_range"] = (hi - lo).tolist()
        inverse = np.array([invert_transform(t) for t in transforms[good]])
        centres = inverse[:, :, 2]  # where the canonical origin (eye midpoint) sits in the frame
        scales = np.hypot(inverse[:, 0, 0], inverse[:, 1, 0])
        iod_px = canon_iod * np.median(scales)
        spread = np.percentile(centres, 95, axis=0) - np.percentile(centres, 5, axis=0)
        head["shift_range"] = float(np.hypot(*spread) / max(iod_px, 1e-6))
        head["scale_range"] = float((np.percentile(scales, 95) - np.percentile(scales, 5)) / np.median(scales))

    unit_total = int((in_range[:n]).sum())
    warnings: list[str] = []
    if usable_count < 0.5 * max(unit_total, 1):
        warnings.append(
            f"Only {usable_count} of {unit_total} frames show your face clearly enough to use: keep your face "
            "in view, facing the camera, with nothing in front of your mouth."
        )
    if open_frames < max(12, 0.04 * usable_count):
        warnings.append("Few open-mouth frames: record yourself reading aloud for at least 30 s.")
    if closed_frames < max(6, 0.01 * usable_count):
        warnings.append("Few closed-mouth frames: include pauses and words with p, b and m (\"maybe\", \"happy\").")
    if trajectory is None:
        warnings.append("The video has no speech we could hear: lip sync works best from footage of you speaking.")
    if head["yaw_range"] > 25 or head["pitch_range"] > 20 or head["shift_range"] > 1.0:
        warnings.append("Your head moves a lot in this video: keep it steadier for cleaner lip sync.")

    meta = {
        "version": LIBRARY_VERSION,
        "fps": fps,
        "width": width,
        "height": height,
        "frame_count": n,
        "first_unit": first_unit,
        "last_unit": last_unit,
        "canon_iod": canon_iod,
        "crop_x0": crop_x0,
        "crop_y0": crop_y0,
        "crop_width": crop_w,
        "crop_height": crop_h,
        "colour_matrix": colour,
        "av_offset_ms": offset_ms,
        "closed_threshold": CLOSED_APERTURE,
        "state_mean": state[usable].mean(axis=0).tolist() if usable.any() else [0.05, 0.6, 0.3, 0.9],
        "state_std": (state[usable].std(axis=0) + 1e-3).tolist() if usable.any() else [0.05, 0.05, 0.05, 0.05],
    }
    library = Library(
        meta=meta, ok=ok, usable=usable, transform=transforms, points=points, pose=pose, state=state, params=params,
        appearance=appearance, visemes=visemes, atlas_index=atlas_index, atlas=atlas, model=model,
    )
    report = PreparationReport(
        total_frames=n, usable_frames=usable_count, viseme_coverage=coverage, head_motion=head, warnings=warnings,
        open_frames=open_frames, closed_frames=closed_frames, av_offset_ms=offset_ms,
    )
    return library, report


def _av_offset(trajectory, aperture: np.ndarray, usable: np.ndarray, fps: float) -> float:
    """Milliseconds by which the footage's sound follows its mouth (best-correlating lag)."""
    jaw = np.asarray(trajectory.jaw, np.float32)
    n = min(len(jaw), len(aperture))
    best, best_lag = -2.0, 0
    for lag in range(-int(0.2 * fps), int(0.3 * fps) + 1):
        a_idx = np.arange(max(0, -lag), min(n, n - lag))
        j_idx = a_idx + lag
        keep = usable[a_idx]
        if keep.sum() < 20:
            continue
        x, y = jaw[j_idx][keep], aperture[a_idx][keep]
        if x.std() < 1e-6 or y.std() < 1e-6:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        if r > best:
            best, best_lag = r, lag
    return 1000.0 * best_lag / fps


# --------------------------------------------------------------------------------------
# Background frame order (loop modes)
# --------------------------------------------------------------------------------------

LOOP_MODES = ("reverse", "forward", "circle", "custom")
CUSTOM_MIN_SECONDS = 5.0


def _ping_pong(position: int, length: int) -> int:
    if length <= 1:
        return 0
    period = 2 * length - 2
    phase = position % period
    return phase if phase < length else period - phase


def segment_frames(n_source: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    """The [first, last) source frames of a start/end segment in seconds (defaults: all)."""
    first = 0 if start is None else int(round(float(start) * fps))
    last = n_source if end is None else int(round(float(end) * fps))
    first = min(max(first, 0), max(n_source - 1, 0))
    last = min(max(last, first + 1), n_source)
    return first, last


def background_indices(
    n_source: int,
    n_out: int,
    *,
    loop_mode: str,
    fps: float,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[int]:
    """The footage frame shown at each of ``n_out`` output frames (same frame rate).

    Within the segment [start, end) seconds (default: the whole footage):

    - ``reverse``: forward, then backward, then forward… (a ping-pong: no jump at the
      turns, and no frame shown twice in a row);
    - ``forward``: forward, then from the segment's start again (a cut at each seam);
    - ``circle``: out and back so the last output frame is the first one (the video loops
      seamlessly); ping-pong inside the segment when the speech is longer;
    - ``custom``: the reverse splice over the chosen segment (Tencent's MakeType Custom).
    """
    if loop_mode not in LOOP_MODES:
        raise InputRejected(
            f"Unknown loop mode {loop_mode!r}; choose reverse, forward, circle or custom.",
            field="loop_mode", code="loop_mode",
        )
    if n_source <= 0:
        raise EngineError("The avatar footage has no frames.")
    first, last = segment_frames(n_source, fps, start, end)
    length = last - first
    for k in range(max(0, n_out)):
        if loop_mode == "forward":
            offset = k % length
        elif loop_mode == "circle":
            offset = _ping_pong(min(k, n_out - 1 - k), length)
        else:
            offset = _ping_pong(k, length)
        yield first + offset


def check_render_options(
    *,
    loop_mode: str,
    footage_seconds: float | None = None,
    segment_start: float | None = None,
    segment_end: float | None = None,
    disable_intervals: Sequence[Sequence[float]] = (),
) -> list[tuple[float, float]]:
    """Refuse bad loop/segment/interval options with a sentence; return the intervals."""
    if loop_mode not in LOOP_MODES:
        raise InputRejected(
            f"Unknown loop mode {loop_mode!r}; choose reverse, forward, circle or custom.",
            field="loop_mode", code="loop_mode",
        )
    for name, value in (("start", segment_start), ("end", segment_end)):
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
            raise InputRejected(f"The segment {name} must be a number of seconds, 0 or more.",
                                field="segment_" + name, code="segment_value")
    if loop_mode == "custom":
        if segment_start is None or segment_end is None:
            raise InputRejected("A custom segment needs a start and an end time, at least 5 s apart.",
                                field="segment_start", code="segment_missing")
        if segment_end - segment_start < CUSTOM_MIN_SECONDS - 1e-9:
            raise InputRejected(
                f"The custom segment is {max(0.0, segment_end - segment_start):.1f} s long; "
                f"choose a start and end at least {CUSTOM_MIN_SECONDS:.0f} s apart.",
                field="segment_end", code="segment_short",
            )
    if segment_start is not None and segment_end is not None and segment_end <= segment_start:
        raise InputRejected("The segment must end after it starts.", field="segment_end", code="segment_order")
    if footage_seconds is not None:
        if segment_start is not None and segment_start >= footage_seconds:
            raise InputRejected(
                f"The segment starts at {segment_start:.1f} s but the avatar's video is only "
                f"{footage_seconds:.1f} s long.", field="segment_start", code="segment_outside",
            )
        if segment_end is not None and segment_end > footage_seconds + 0.05:
            raise InputRejected(
                f"The segment ends at {segment_end:.1f} s but the avatar's video is only "
                f"{footage_seconds:.1f} s long.", field="segment_end", code="segment_outside",
            )
    return check_disable_intervals(disable_intervals)


MAX_DISABLE_INTERVALS = 5


def check_disable_intervals(intervals: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """At most 5 [start, end] pairs in seconds of the avatar's footage, in chronological
    order and not overlapping (Tencent's DisableIntervals)."""
    intervals = list(intervals or [])
    if len(intervals) > MAX_DISABLE_INTERVALS:
        raise InputRejected(
            f"You gave {len(intervals)} intervals without lip sync; at most {MAX_DISABLE_INTERVALS} are allowed.",
            field="disable_intervals", code="intervals_too_many",
        )
    out: list[tuple[float, float]] = []
    for number, pair in enumerate(intervals, start=1):
        try:
            start, end = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise InputRejected(
                f"Interval {number} must be a pair of times in seconds, like [1.5, 3].",
                field="disable_intervals", code="intervals_format",
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise InputRejected(
                f"Interval {number} must start at 0 s or later and end after it starts.",
                field="disable_intervals", code="intervals_order",
            )
        if out and start < out[-1][1]:
            raise InputRejected(
                "List the intervals without lip sync in chronological order, without overlaps "
                f"(interval {number} starts before interval {number - 1} ends).",
                field="disable_intervals", code="intervals_order",
            )
        out.append((start, end))
    return out


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


class RenderedFrame:
    """One output frame. ``frame`` is the yuv420p picture for the encoder; ``rgb`` and
    ``mouth_mask`` are computed on first access (a full-frame RGB conversion is the most
    expensive thing a render could do, and the pipeline never needs it).

    ``source_index`` is the footage frame whose mouth is shown (the background frame itself
    when the frame is untouched), ``background_index`` the footage frame drawn on.
    ``mouth_mask`` is the blend mask actually used (float32 H×W in [0, 1]) or None for an
    untouched frame, whose ``rgb`` is byte-identical to the decoded background frame's. A
    touched frame's ``rgb`` is too, except within 2 pixels of the mask (4:2:0 chroma).
    """

    __slots__ = ("index", "source_index", "background_index", "frame", "background", "roi", "roi_mask",
                 "rotation", "_rgb")

    def __init__(self, index, source_index, background_index, frame, roi=None, roi_mask=None, rotation=0,
                 background=None):
        self.index = index
        self.source_index = source_index
        self.background_index = background_index
        self.frame = frame
        self.background = background if background is not None else frame  # the decoded frame
        self.roi = roi  # (x0, y0, x1, y1) in frame pixels, or None
        self.roi_mask = roi_mask
        self.rotation = rotation
        self._rgb = None

    @property
    def touched(self) -> bool:
        return self.roi is not None

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            base = media.frame_to_rgb(self.background, rotation=self.rotation)
            if self.roi is not None:
                import cv2

                # The new frame's pixels where the mask reaches (plus the chroma they share);
                # everywhere else the decoded frame's own conversion, which also keeps its
                # chroma siting (a fresh frame carries none, and swscale reads it).
                blended = media.frame_to_rgb(self.frame, rotation=self.rotation)
                x0, y0, x1, y1 = self.roi
                near = cv2.dilate((self.roi_mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                window = base[y0:y1, x0:x1]
                window[near] = blended[y0:y1, x0:x1][near]
            self._rgb = base
        return self._rgb

    @property
    def mouth_mask(self) -> np.ndarray | None:
        if self.roi is None:
            return None
        mask = np.zeros((self.frame.height, self.frame.width), np.float32)
        x0, y0, x1, y1 = self.roi
        mask[y0:y1, x0:x1] = self.roi_mask
        return mask

    def __repr__(self) -> str:
        return f"RenderedFrame(index={self.index}, source_index={self.source_index}, touched={self.touched})"


class _AtlasReader:
    """Random access to the atlas crops. All packets sit in memory; a sequential read decodes
    one small frame, a jump restarts the decoder at the keyframe before it (at most
    ATLAS_GOP - 1 extra frames). No demuxer seeks."""

    def __init__(self, data: bytes):
        import av

        self.container = av.open(io.BytesIO(data), mode="r", format="mp4")
        stream = self.container.streams.video[0]
        self.packets = [packet for packet in self.container.demux(stream) if packet.size]
        self.keyframe = np.array([packet.is_keyframe for packet in self.packets], bool)
        self.codec = stream.codec_context
        self.codec.thread_type = "NONE"
        self.cache: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self.next_index = -1
        self.decoded = 0

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hit = self.cache.get(index)
        if hit is not None:
            self.cache.move_to_end(index)
            return hit
        if not 0 <= index < len(self.packets):
            raise EngineError("The avatar's mouth library is damaged; prepare the avatar again.")
        if not (0 <= self.next_index <= index and index - self.next_index < ATLAS_GOP):
            start = index
            while start > 0 and not self.keyframe[start]:
                start -= 1
            self.codec.flush_buffers()
            self.next_index = start
        planes = None
        while self.next_index <= index:
            frames = self.codec.decode(self.packets[self.next_index])
            self.decoded += 1
            at = self.next_index
            self.next_index += 1
            if frames and at >= index - 1:
                planes = tuple(np.array(p) for p in yuv_planes(frames[-1]))
                self.cache[at] = planes
                while len(self.cache) > 48:
                    self.cache.popitem(last=False)
        if planes is None or index not in self.cache:
            raise EngineError("The avatar's mouth library is damaged; prepare the avatar again.")
        return self.cache[index]

    def close(self) -> None:
        self.cache.clear()
        self.packets = []
        self.container.close()


# -- unit selection ------------------------------------------------------------------------

@dataclass
class SelectionWeights:
    context: float = 0.45  # viseme class heard at the unit ≠ the target's (script: exact labels)
    # … for recognised speech, whose labels are often wrong; its model already reads them
    context_recognised: float = 0.1
    pose: float = 0.6  # per (10°)² of yaw/pitch difference with the background frame
    closure: float = 6.0  # a p/b/m frame given an open mouth
    reuse: float = 0.015  # per earlier use of the same source frame
    jump: float = 0.8  # any non-consecutive join
    join_lips: float = 1.0  # × lip-shape distance (normalised) at a join
    join_appearance: float = 0.5  # × appearance distance (normalised) at a join
    hold: float = 0.5  # showing the same source frame twice
    skip: float = 0.25  # skipping one source frame
    window: int = 48  # frames committed per Viterbi pass
    lookahead: int = 24
    candidates: int = 24


@dataclass
class _Choice:
    unit: int  # library frame whose mouth is shown
    fade_from: int = -1  # library frame to cross-fade from (the previous unit's successor)
    fade: float = 0.0  # weight of fade_from
    closed: bool = False  # the target wants the lips pressed together here


BIG_JOIN = 1.5  # weighted lip + appearance distance above which a cut fades over two frames
# Which frames close the lips for a p/b/m: when the sound is heard ("audio"), when this
# speaker's mouth closes relative to their sound in the footage ("mouth"), or both.
CLOSURE_TIMING = "bridge"


class _Planner:
    """Viterbi over candidate units, window by window with lookahead."""

    def __init__(self, library: Library, predicted: np.ndarray, trajectory, backgrounds: list[int],
                 weights: SelectionWeights | None = None):
        self.w = weights or SelectionWeights()
        lib = library
        self.units = np.flatnonzero(lib.usable)
        if len(self.units) == 0:
            raise EngineError("The avatar's footage has no usable mouth frames; record a new video.")
        mean = np.asarray(lib.meta["state_mean"], np.float32)
        std = np.asarray(lib.meta["state_std"], np.float32)
        self.unit_state = (lib.state[self.units] - mean) / std
        self.target = (np.asarray(predicted, np.float32) - mean) / std
        self.T = len(backgrounds)
        fps = trajectory.fps
        exact = exact_timing(trajectory)
        self.context_weight = self.w.context if exact else self.w.context_recognised
        lag = 0 if exact else int(round(lib.meta.get("av_offset_ms", 0.0) / 1000.0 * fps))
        lag = max(0, min(lag, int(0.2 * fps)))
        classes = np.array([VISEME_CLASSES.get(v, 0) for v in VISEME_ORDER] + [-1], np.int8)
        unit_visemes = lib.visemes[np.clip(self.units + lag, 0, lib.frame_count - 1)]
        self.unit_class = classes[unit_visemes]
        labels = list(trajectory.visemes) + ["sil"] * max(0, self.T + lag - trajectory.frame_count)
        self.target_class = np.array([VISEME_CLASSES.get(labels[min(t + lag, len(labels) - 1)], 0)
                                      for t in range(self.T)], np.int8)
        pp = np.array([label == "PP" for label in labels] + [False] * (self.T + lag + 1), bool)
        at_audio = pp[: self.T]
        at_mouth = pp[lag : lag + self.T]
        if CLOSURE_TIMING == "audio" or exact:
            self.closed_target = at_audio
        elif CLOSURE_TIMING == "mouth":
            self.closed_target = at_mouth
        elif CLOSURE_TIMING == "union":
            self.closed_target = at_audio | at_mouth
        else:  # "bridge": the speaker's own timing, held until the sound's first closed frame
            closed = at_mouth.copy()
            starts = np.flatnonzero(at_audio & ~np.concatenate([[False], at_audio[:-1]]))
            for start in starts:
                closed[max(0, start - lag) : start + 1] = True
            self.closed_target = closed
        self.unit_closed = lib.state[self.units, 0] <= float(lib.meta.get("closed_threshold", CLOSED_APERTURE))
        if self.unit_closed.any():
            # a p/b/m wants this speaker's closed mouth, whatever the smooth prediction says
            closed_state = np.median(self.unit_state[self.unit_closed], axis=0)
            self.target[self.closed_target[: len(self.target)]] = closed_state
        bg = np.clip(np.asarray(backgrounds, np.int64), 0, lib.frame_count - 1)
        self.bg_pose = lib.pose[bg, :2]
        self.bg_ok = lib.ok[bg]
        self.unit_pose = lib.pose[self.units, :2]
        lips = lib.points[self.units][:, K_LIPS, :] / lib.iod
        lips = lips - lips.mean(axis=1, keepdims=True)
        self.unit_lips = lips.reshape(len(self.units), -1)
        self.unit_app = lib.appearance[self.units]
        # successor unit (the next footage frame, when it is a unit too)
        position = np.full(lib.frame_count + 2, -1, np.int64)
        position[self.units] = np.arange(len(self.units))
        self.succ = position[np.minimum(self.units + 1, lib.frame_count + 1)]
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, len(self.units), (2, 400))
        self.lip_scale = float(np.median(((self.unit_lips[a] - self.unit_lips[b]) ** 2).sum(axis=1))) + 1e-6
        self.app_scale = float(np.median(((self.unit_app[a] - self.unit_app[b]) ** 2).sum(axis=1))) + 1e-6
        # one vector per unit whose squared distances are the weighted join distances
        self.join_features = np.hstack([
            self.unit_lips * math.sqrt(self.w.join_lips / self.lip_scale),
            self.unit_app * math.sqrt(self.w.join_appearance / self.app_scale),
        ]).astype(np.float64)
        self.join_norms = (self.join_features**2).sum(axis=1)
        self.usage = np.zeros(len(self.units), np.float32)

    def _target_costs(self, t0: int, t1: int) -> np.ndarray:
        w = self.w
        diff = self.target[t0:t1, None, :] - self.unit_state[None, :, :]
        cost = (diff**2 * STATE_WEIGHTS).sum(axis=2)
        cost += self.context_weight * (self.target_class[t0:t1, None] != self.unit_class[None, :])
        pose = ((self.bg_pose[t0:t1, None, :] - self.unit_pose[None, :, :]) / 10.0) ** 2
        cost += w.pose * pose.sum(axis=2) * self.bg_ok[t0:t1, None]
        cost += w.closure * (self.closed_target[t0:t1, None] & ~self.unit_closed[None, :])
        cost += w.reuse * np.minimum(self.usage, 40.0)[None, :]
        return cost

    def _join(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Join cost matrix (len(prev) × len(cur)) between unit positions."""
        w = self.w
        succ = self.succ[prev]
        natural = np.where(succ >= 0, succ, prev)
        # squared distances as |a|² + |b|² - 2ab: one small matrix product each
        feats = self.join_features
        a, b = feats[natural], feats[cur]
        sq = self.join_norms
        cost = w.jump + np.maximum(sq[natural][:, None] + sq[cur][None, :] - 2.0 * (a @ b.T), 0.0)
        cost[succ[:, None] == cur[None, :]] = 0.0
        cost[prev[:, None] == cur[None, :]] = w.hold
        succ2 = np.where(succ >= 0, self.succ[np.maximum(succ, 0)], -1)
        skip = (succ2[:, None] == cur[None, :]) & (succ2[:, None] >= 0)
        cost[skip] = np.minimum(cost[skip], w.skip)
        return cost

    def plan(self) -> Iterator[_Choice]:
        w = self.w
        t = 0
        previous_choice: int | None = None
        fading: tuple[int, float] | None = None  # the second frame of a two-frame cross-fade
        while t < self.T:
            t1 = min(self.T, t + w.window + w.lookahead)
            costs = self._target_costs(t, t1)
            k = min(w.candidates, costs.shape[1])
            top = np.argpartition(costs, k - 1, axis=1)[:, :k]
            states: list[np.ndarray] = []
            backs: list[np.ndarray] = []
            if previous_choice is None:
                cur = top[0]
                acc = costs[0, cur]
            else:
                prev = np.array([previous_choice])
                cur = np.unique(np.concatenate([top[0], self.succ[prev][self.succ[prev] >= 0]]))
                acc = costs[0, cur] + self._join(prev, cur)[0]
            states.append(cur)
            backs.append(np.zeros(len(cur), np.int64))
            for step in range(1, t1 - t):
                prev = states[-1]
                best_prev = prev[np.argsort(acc)[:k]]
                extra = self.succ[best_prev]
                cur = np.unique(np.concatenate([top[step], extra[extra >= 0]]))
                total = acc[:, None] + self._join(prev, cur)
                back = np.argmin(total, axis=0)
                acc = total[back, np.arange(len(cur))] + costs[step, cur]
                states.append(cur)
                backs.append(back)
            # backtrack
            path = np.empty(t1 - t, np.int64)
            j = int(np.argmin(acc))
            for step in range(t1 - t - 1, -1, -1):
                path[step] = states[step][j]
                j = int(backs[step][j])
            commit = path[: min(w.window, t1 - t)] if t1 < self.T else path
            for offset, unit in enumerate(commit):
                index = t + offset
                choice = _Choice(unit=int(self.units[unit]), closed=bool(self.closed_target[index]))
                quiet = not choice.closed and not (index > 0 and self.closed_target[index - 1])
                if previous_choice is not None:
                    succ = self.succ[previous_choice]
                    if unit != succ and unit != previous_choice and succ >= 0 and quiet:
                        # A cut between source frames: show half of where the old run was
                        # going; after a big jump, a quarter of it once more the frame after.
                        choice.fade_from, choice.fade = int(self.units[succ]), 0.5
                        fading = None
                        after = self.succ[succ]
                        distance = float(((self.join_features[succ] - self.join_features[unit]) ** 2).sum())
                        if after >= 0 and distance > BIG_JOIN:
                            fading = (int(self.units[after]), 0.25)
                    elif fading is not None and quiet and unit == self.succ[previous_choice]:
                        choice.fade_from, choice.fade = fading
                        fading = None
                    else:
                        fading = None
                self.usage[unit] += 1.0
                previous_choice = int(unit)
                yield choice
            t += len(commit)


# -- compositing -----------------------------------------------------------------------------

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


def _copy_frame(frame):
    """A new yuv420p frame with the same pixels and colour tags (the decoded one may be cached)."""
    import av

    out = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for src, dst in zip(yuv_planes(frame), yuv_planes(out)):
        np.copyto(dst, src)
    out.colorspace = frame.colorspace
    out.color_range = frame.color_range
    # The decoded picture type travels to x264 (as it does when a frame is re-encoded as
    # it was decoded): it skips its own frame-type analysis, which costs ~2 ms a frame.
    out.pict_type = frame.pict_type
    return out


class _Compositor:
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
        self.margin = int(math.ceil(0.1 * h)) + 1
        self.colour: np.ndarray | None = None  # running (dY, dU, dV, gain)
        self.centre = 0.0
        self._frames_since_colour = 0
        # half-resolution mask pixel → full-resolution crop pixel (pixel centres)
        self.half_to_crop = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])

    # -- masks in (half-resolution) crop space ------------------------------------------------
    def _polygon(self, points: np.ndarray) -> np.ndarray:
        poly = _polygon_lower_face(points).copy()
        centre_x = float(points[K_SUBNASALE, 0])
        jaw = len(K_JAW)
        # Keep the jaw's outer edge (and the wall behind it) from the background frame.
        poly[:jaw, 0] = centre_x + (poly[:jaw, 0] - centre_x) * 0.84
        # Reach below the chin, so both chins (source and background) are covered.
        chin = np.arange(jaw // 2 - 2, jaw // 2 + 3)
        poly[chin, 1] += 0.09 * self.iod
        # Stay under the nose.
        poly[jaw:, 1] += 0.03 * self.iod
        return (poly - self.origin) * 0.5 - 0.25

    def masks(self, background: int, source: int) -> np.ndarray:
        """The feathered mask at half the crop's resolution.

        The region reaches down to the lower of the two chins (both are covered, so no double
        chin) but sideways only as far as the narrower of the two faces: beyond a turned
        face's cheek is the wall, which must come from the background frame."""
        cv2 = self.cv2
        bg, src = self._polygon(self.lib.points[background]), self._polygon(self.lib.points[source])
        centre = 0.5 * (bg[:, 0].mean() + src[:, 0].mean())
        left = bg[:, 0] < centre
        poly = np.empty_like(bg)
        poly[:, 0] = np.where(left, np.maximum(bg[:, 0], src[:, 0]), np.minimum(bg[:, 0], src[:, 0]))
        poly[:, 1] = np.maximum(bg[:, 1], src[:, 1])
        support = np.zeros((self.hh, self.hw), np.uint8)
        cv2.fillPoly(support, [np.round(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=2)
        support = cv2.dilate(support, self.dilate)
        m = self.margin
        support[:m], support[-m:], support[:, :m], support[:, -m:] = 0, 0, 0, 0
        mask = cv2.GaussianBlur(support, (0, 0), self.sigma).astype(np.float32) * (1.0 / 255.0)
        mask[mask < 0.01] = 0.0
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
        outline = np.concatenate([points[K_JAW], points[[_POS[454], _POS[168], _POS[234]]]])
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
        if correction is not None:
            y_c, u_c, v_c = _apply_correction(cv2, (y_c, u_c, v_c), correction)
        mask = self.masks(background, source)
        x, y, w, h = cv2.boundingRect((mask > 0).astype(np.uint8))
        if w == 0 or h == 0:
            return frame, None, None

        to_crop = lib.transform[background].astype(np.float64).copy()
        to_crop[:, 2] -= self.origin
        crop_to_frame = _affine3(invert_transform(to_crop))
        half_to_frame = crop_to_frame @ self.half_to_crop
        corners = np.array([[x - 0.5, y - 0.5], [x + w + 0.5, y - 0.5], [x - 0.5, y + h + 0.5],
                            [x + w + 0.5, y + h + 0.5]], np.float32)
        placed = apply_transform(half_to_frame[:2].astype(np.float32), corners)
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
        mc = _chroma_matrix(m)
        flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
        planes = yuv_planes(frame)
        self._update_colour(lambda: self.ring(mask, background, source), (y_c, u_c, v_c), planes, half_to_frame)
        y_c, u_c, v_c = self._corrected(y_c, u_c, v_c)

        # the mask: half-resolution crop → chroma-sized ROI (one small warp), then ×2 for luma
        # (the half-resolution mask lies on the crop's chroma grid, so the chroma matrix fits)
        a2 = cv2.warpAffine(mask, mc, (rw // 2, rh // 2), flags=flags, borderMode=cv2.BORDER_CONSTANT)
        alpha = cv2.resize(a2, (rw, rh), interpolation=cv2.INTER_LINEAR)
        alpha[alpha < 0.01] = 0.0
        a2[a2 < 0.01] = 0.0
        y_s = cv2.warpAffine(y_c, m, (rw, rh), flags=flags, borderMode=border)
        u_s = cv2.warpAffine(u_c, mc, (rw // 2, rh // 2), flags=flags, borderMode=border)
        v_s = cv2.warpAffine(v_c, mc, (rw // 2, rh // 2), flags=flags, borderMode=border)

        out = _copy_frame(frame)
        out_planes = yuv_planes(out)
        # where alpha is 0 the background's sample comes back exactly
        out_planes[0][y0:y1, x0:x1] = cv2.blendLinear(y_s, planes[0][y0:y1, x0:x1], alpha, 1.0 - alpha)
        beta2 = 1.0 - a2
        for k, plane_s in ((1, u_s), (2, v_s)):
            window = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
            out_planes[k][window] = cv2.blendLinear(plane_s, planes[k][window], a2, beta2)
        return out, (x0, y0, x1, y1), alpha

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

    def _update_colour(self, ring: Callable[[], np.ndarray], crop, planes, half_to_frame: np.ndarray) -> None:
        """Lab statistics on the ring just outside the mask: the source's mean colour is moved
        to the background's and its lightness contrast scaled, smoothed over time. ``ring``
        draws the ring, only on the frames that measure."""
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
        # the crop at those points (full-resolution crop pixel = 2 × half + 0.5)
        cy = np.minimum(rows * 2, y_c.shape[0] - 1)
        cx = np.minimum(cols * 2, y_c.shape[1] - 1)
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


def _apply_correction(cv2, crop, correction):
    """Remap the sub-rectangle of the crop that the lip correction moves."""
    (x0, y0, x1, y1), map_x, map_y, hx, hy = correction
    y_c, u_c, v_c = (np.array(plane) for plane in crop)
    y_c[y0:y1, x0:x1] = cv2.remap(y_c, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    u_c[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = cv2.remap(u_c, hx, hy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    v_c[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = cv2.remap(v_c, hx, hy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return y_c, u_c, v_c


# -- the frame stream ------------------------------------------------------------------------

_mediaio = media  # ``synthesize_frames`` has a parameter called ``media``


def _single_threaded_cv2() -> int:
    """OpenCV's thread pool costs more than it saves on crops this small (its workers spin
    while x264's threads need the second core); returns the previous setting."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return previous


def _restore_cv2(previous: int) -> None:
    import cv2

    cv2.setNumThreads(previous)


def _disabled_frames(intervals: Sequence[tuple[float, float]], fps: float):
    spans = [(int(math.floor(s * fps + 1e-6)), int(math.ceil(e * fps - 1e-6))) for s, e in intervals]

    def disabled(index: int) -> bool:
        return any(first <= index <= last for first, last in spans)

    return disabled


CORRECTION = 0.8  # share of the gap between the chosen mouth and the target that is warped away
MAX_CORRECTION = 0.08  # inter-ocular units


def _gap_change(lib: Library, choice: _Choice, target: np.ndarray) -> float:
    """Canonical pixels by which to change the chosen mouth's inner-lip gap."""
    gap = float(lib.state[choice.unit, 0])
    if choice.closed:  # press the lips together, whatever it takes
        return -1e6 if gap > 0.008 else 0.0
    change = CORRECTION * (float(target[0]) - gap)
    change = float(np.clip(change, -MAX_CORRECTION, MAX_CORRECTION))
    if change > 0:  # open only a mouth that is open: there must be an inside to stretch
        change = min(change, max(0.0, gap - 0.02))
    return change * lib.iod


def synthesize_frames(
    *,
    media: Path,
    library: Path,
    trajectory,
    background_indices: Iterable[int],
    disable_intervals: Sequence[tuple[float, float]] = (),
    should_cancel: CancelFn | None = None,
    weights: SelectionWeights | None = None,
) -> Iterator[RenderedFrame]:
    """Lip-synced frames, one per trajectory frame, streamed.

    ``media`` is the avatar's footage (the file the library was built from);
    ``background_indices`` gives, for output frame i, the footage frame to draw on (see
    ``background_indices()``); ``trajectory`` (``visemes.Trajectory`` at the output frame
    rate) drives the mouth. ``disable_intervals`` are [start, end] seconds *of the footage*
    (Tencent's DisableIntervals: "lip sync is not applied to the original video from 1 s to
    2 s"): background frames inside them, and frames where the library found no usable face,
    are yielded exactly as decoded. Memory stays bounded: frames are decoded as needed and
    mouth crops come from the library's small atlas stream.
    """
    lib = Library.load(library)
    intervals = check_disable_intervals(disable_intervals)
    total = trajectory.frame_count
    backgrounds: list[int] = []
    for value in background_indices:
        if len(backgrounds) >= total:
            break
        backgrounds.append(int(value))
    cancel_at = [-math.inf]

    def check_cancel() -> None:
        if should_cancel is None:
            return
        now = time.monotonic()
        if now - cancel_at[0] >= 0.25:
            cancel_at[0] = now
            if should_cancel():
                raise Cancelled("The render was cancelled.")

    reader = _mediaio.VideoReader(media)
    atlas = None
    cv2_threads = _single_threaded_cv2()
    try:
        if abs(reader.fps - lib.fps) > 0.01 or abs(reader.frame_count - lib.frame_count) > 2:
            raise EngineError("The mouth library doesn't belong to this footage; prepare the avatar again.")
        disabled = _disabled_frames(intervals, reader.fps)
        predicted = predict_state(lib, trajectory)
        if len(predicted) < len(backgrounds):
            predicted = np.vstack([predicted, np.repeat(predicted[-1:], len(backgrounds) - len(predicted), axis=0)])
        choices = _Planner(lib, predicted[: len(backgrounds)], trajectory, backgrounds, weights).plan()
        atlas = _AtlasReader(lib.atlas)
        compositor: _Compositor | None = None
        for t, frame in enumerate(reader.frames(backgrounds)):
            check_cancel()
            choice = next(choices)
            b = min(max(backgrounds[t], 0), lib.frame_count - 1)
            if frame.format.name not in ("yuv420p", "yuvj420p"):
                frame = frame.reformat(format="yuv420p")
            if disabled(b) or not lib.ok[b] or reader.rotation:
                yield RenderedFrame(t, b, b, frame, rotation=reader.rotation)
                continue
            if compositor is None:
                compositor = _Compositor(lib, _colour_matrix(frame))
            crop = atlas.get(int(lib.atlas_index[choice.unit]))
            fade_crop = None
            if choice.fade_from >= 0 and lib.atlas_index[choice.fade_from] >= 0:
                fade_crop = atlas.get(int(lib.atlas_index[choice.fade_from]))
            correction = lip_correction_field(lib.points[choice.unit], np.array(lib.crop_origin, np.float32),
                                              lib.crop_size, lib.iod, _gap_change(lib, choice, predicted[t]))
            out, roi, mask = compositor.compose(frame, b, choice.unit, crop, fade_crop, choice.fade, correction)
            if roi is None:
                yield RenderedFrame(t, b, b, frame)
            else:
                yield RenderedFrame(t, choice.unit, b, out, roi, mask, background=frame)
    finally:
        if atlas is not None:
            atlas.close()
        reader.close()
        _restore_cv2(cv2_threads)


# -- small lip-shape correction ---------------------------------------------------------------


def _contour_y(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def lip_correction_field(points: np.ndarray, crop_origin: np.ndarray, size: tuple[int, int], iod: float,
                         gap_change: float):
    """The lip-shape correction for a crop whose inner-lip gap should change by
    ``gap_change`` canonical pixels (negative: close), as ``((x0, y0, x1, y1), map_x, map_y,
    chroma_x, chroma_y)``: backward maps (``cv2.remap``, crop coordinates; the chroma ones on
    the chroma grid) for the sub-rectangle it moves, or None.

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
    # Worked out on the chroma grid (every other pixel, at 2i + 0.5), then resized up.
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
    half_y = np.repeat(ys, len(cx), axis=1)
    for k in range(len(src) - 1):
        t0, t1 = dst[k][None, :], dst[k + 1][None, :]
        s0, s1 = src[k][None, :], src[k + 1][None, :]
        segment = (ys >= t0) & (ys < t1)
        value = s0 + (ys - t0) * (s1 - s0) / np.maximum(t1 - t0, 1e-3)
        np.copyto(half_y, value, where=segment)
    half_x = np.repeat(cx[None, :], len(ys), axis=0)
    import cv2

    size = (x1 - x0, y1 - y0)
    map_x = cv2.resize(half_x, size, interpolation=cv2.INTER_LINEAR)
    map_y = cv2.resize(half_y, size, interpolation=cv2.INTER_LINEAR)
    # chroma sample (i, j) sits at luma (2i + 0.5, 2j + 0.5): the half grid's own points
    return (x0, y0, x1, y1), map_x, map_y, (half_x - 0.5) * 0.5, (half_y - 0.5) * 0.5
