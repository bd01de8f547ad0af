"""The per-avatar mouth library: what preparation measured in every frame of the footage.

Per frame: the similarity transform from the rigid points (eyes, nose bridge, forehead) to
a canonical face, the lip, jaw and under-nose landmarks in canonical space (the ``KEPT``
landmarks, addressed through the ``K_*`` tables), mouth-state measures (aperture, width,
lip height, jaw drop — and the same six parameters as ``visemes.Trajectory``), head pose, a
16-number appearance code of the canonical mouth crop, and the viseme heard in the
footage's own audio at that frame. Frames where the face is missing, too turned, or the
mouth looks occluded are marked unusable. Everything goes into one compressed ``.npz`` of
NumPy arrays; the mouth crops themselves live in it as one small H.264 stream (the atlas,
``atlas.py``) so renders never seek in the full-size footage.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..face import (
    APERTURE_PAIRS,
    JAW_INDICES,
    LIP_INDICES,
    LIP_INNER,
    LIP_OUTER,
    RIGID_INDICES,
    UNDER_NOSE_INDICES,
)

LIBRARY_SUFFIX = ".npz"
LIBRARY_VERSION = 2

# Landmarks kept per frame (canonical space): lips, jaw line, under the nose, rigid points.
KEPT = np.unique(np.concatenate([LIP_INDICES, JAW_INDICES, UNDER_NOSE_INDICES, RIGID_INDICES,
                                 [1, 2, 152, 168, 234, 454]]))
KEPT_POSITION = {int(index): i for i, index in enumerate(KEPT)}


def _k(indices) -> np.ndarray:
    return np.array([KEPT_POSITION[int(i)] for i in np.atleast_1d(indices)])


K_LIPS = _k(LIP_INDICES)
K_INNER = _k(LIP_INNER)
K_OUTER = _k(LIP_OUTER)
K_JAW = _k(JAW_INDICES)
K_UNDER_NOSE = _k(UNDER_NOSE_INDICES)
K_RIGID = _k(RIGID_INDICES)
K_APERTURE = [(KEPT_POSITION[a], KEPT_POSITION[b]) for a, b in APERTURE_PAIRS]
K_CHIN, K_SUBNASALE = KEPT_POSITION[152], KEPT_POSITION[2]
K_CORNERS = _k([61, 291])
K_LIP_TOP, K_LIP_BOTTOM = KEPT_POSITION[0], KEPT_POSITION[17]

# Canonical face: eye midpoint at the origin, eyes level, CANON_IOD pixels between the outer
# eye corners (the footage's own median size, within these bounds: small enough to stay
# fast, large enough to keep the teeth sharp).
CANON_IOD_MIN, CANON_IOD_MAX = 48.0, 128.0
# The canonical mouth crop, in inter-ocular units around the eye midpoint: from below the
# eyes to well below the chin (the jaw drops ~0.3 when the mouth opens wide).
CROP_X = (-0.95, 0.95)
CROP_Y = (0.30, 1.90)

MAX_YAW = 35.0  # degrees: beyond this a frame is "too turned" to use or to change
# Robust z-scores of a frame's mouth-crop reconstruction error (PCA of the footage's mouths)
OCCLUDED_Z = 14.0  # beyond: the mouth is covered; the frame passes through untouched
UNUSUAL_Z = 6.0  # beyond: not used as a unit
CLOSED_APERTURE = 0.035  # inner-lip gap / IOD below which lips count as closed
OPEN_APERTURE = 0.12  # … and above which the mouth counts as open (for the report)
# mouth state per frame: aperture, width, lip height, jaw drop (inter-ocular units)
STATE_WEIGHTS = np.array([1.0, 0.35, 0.45, 0.5], np.float32)
# the visemes a frame can be labelled with (``Library.visemes`` holds indices into it)
VISEME_ORDER = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")


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
    # "own speech": the footage's sound moves with its mouth, and renders of voices like it use
    # the model learnt from it ("own speech, loudness": the one learnt from its loudness alone,
    # which predicted this footage better); "speaker-independent": it has no such sound (silence, music),
    # and every voice is lip-synced by the speaker-independent mouth alone.
    mouth_timing: str = "own speech"
    own_speech_r: float = float("nan")  # how well the footage's sound and mouth move together

    def to_dict(self) -> dict:
        data = asdict(self)
        data["own_speech_r"] = round(float(self.own_speech_r), 3) if math.isfinite(self.own_speech_r) else None
        data["head_motion"] = {k: round(float(v), 2) for k, v in self.head_motion.items()}
        data["av_offset_ms"] = round(float(self.av_offset_ms), 1)
        data["seconds"] = round(float(self.seconds), 2)
        return data


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

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames the transforms were measured on."""
        return int(self.meta["width"]), int(self.meta["height"])

    def for_frame_size(self, width: int, height: int) -> "Library":
        """This library for the same footage at another size (the avatar's full-size master,
        frame for frame the same pictures): only the frame → canonical transforms change;
        landmarks, crops and measures live in canonical space."""
        w0, h0 = self.frame_size
        if (width, height) == (w0, h0):
            return self
        sx, sy = width / w0, height / h0
        a = self.transform[:, :, :2]
        # pixel centres: x_small + 0.5 = (x_large + 0.5) / scale
        scaled = a / np.array([sx, sy], np.float32)
        shift = (a @ np.array([0.5 / sx - 0.5, 0.5 / sy - 0.5], np.float32))
        transform = np.concatenate([scaled, (self.transform[:, :, 2] + shift)[:, :, None]], axis=2)
        return replace(self, meta={**self.meta, "width": width, "height": height},
                       transform=transform.astype(np.float32))

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

    @staticmethod
    def load_shown(path: str | os.PathLike) -> tuple[np.ndarray, float]:
        """(``ok`` per frame, fps) without reading the rest (the render's frame order needs
        only these, before lip sync loads the whole library)."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                return data["ok"].astype(bool), float(meta["fps"])
        except (OSError, ValueError, KeyError) as exc:
            raise EngineError("The avatar's mouth library is missing or damaged; prepare the avatar again.") from exc

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
