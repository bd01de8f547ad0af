"""The per-frame mouth trajectory: the ``Trajectory`` record and how it is built from a timeline.

``trajectory_from_phonemes`` runs the steps: segments (``segments``), dominance blending and
loudness gain (``coarticulation``), then the hard rules (``rules``).
``trajectory_from_speech`` and ``trajectory_from_audio`` feed it synthesized speech or a
recorded voice track.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..speech import (
    CEPSTRUM_COEFFICIENTS,
    PAUSE,
    PhonemeEvent,
    Speech,
    WordEvent,
    cepstrum_and_signature,
    frame_loudness,
)
from .coarticulation import blend, loudness_gain
from .mapping import DOMINANCE, PARAMETERS, TARGETS
from .rules import closure_frames, enforce_min_run, frame_labels, relax_in_silence
from .segments import Segment, hold_short_pauses, resolve_borrowers, segments_from_phonemes


@dataclass
class Trajectory:
    """Per-frame mouth parameters at ``fps``; frame k shows time k / fps."""

    fps: float
    jaw: np.ndarray
    width: np.ndarray
    round: np.ndarray
    closure: np.ndarray
    tuck: np.ndarray
    teeth: np.ndarray
    visemes: list[str]
    phonemes: list[PhonemeEvent] = field(default_factory=list)  # the timeline it came from
    words: list[WordEvent] = field(default_factory=list)
    loudness: np.ndarray | None = None  # RMS per frame of the driving audio
    audio_duration: float | None = None
    cepstrum: np.ndarray | None = None  # (frames, 13) mel cepstrum of the driving audio
    voice_signature: np.ndarray | None = None  # the recording's long-term spectrum (speech.cepstrum_and_signature)

    @property
    def frame_count(self) -> int:
        return len(self.visemes)

    @property
    def duration(self) -> float:
        return self.audio_duration if self.audio_duration is not None else self.frame_count / self.fps

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.frame_count) / self.fps

    def parameters(self) -> np.ndarray:
        """frames × 6 array in PARAMETERS order."""
        return np.stack([getattr(self, name) for name in PARAMETERS], axis=1)

    def frame(self, index: int) -> dict[str, float | str]:
        values: dict[str, float | str] = {name: float(getattr(self, name)[index]) for name in PARAMETERS}
        values["viseme"] = self.visemes[index]
        return values

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "duration": round(self.duration, 6),
            "parameters": {name: [round(float(v), 4) for v in getattr(self, name)] for name in PARAMETERS},
            "visemes": list(self.visemes),
            "loudness": None if self.loudness is None else [round(float(v), 5) for v in self.loudness],
            "cepstrum": None if self.cepstrum is None else np.round(self.cepstrum, 3).tolist(),
            "voice_signature": None if self.voice_signature is None else np.round(self.voice_signature, 4).tolist(),
            "phonemes": [
                {"start": round(p.start, 5), "end": round(p.end, 5), "phoneme": p.phoneme}
                for p in self.phonemes
            ],
            "words": [
                {"start": round(w.start, 5), "end": round(w.end, 5), "text": w.text} for w in self.words
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | dict) -> Trajectory:
        payload = json.loads(data) if isinstance(data, (str, bytes)) else data
        parameters = {name: np.asarray(payload["parameters"][name], dtype=np.float32) for name in PARAMETERS}
        loudness = payload.get("loudness")
        cepstrum = payload.get("cepstrum")
        signature = payload.get("voice_signature")
        return cls(
            fps=float(payload["fps"]),
            visemes=list(payload["visemes"]),
            phonemes=[PhonemeEvent(p["start"], p["end"], p["phoneme"]) for p in payload.get("phonemes", [])],
            words=[WordEvent(w["start"], w["end"], w["text"]) for w in payload.get("words", [])],
            loudness=None if loudness is None else np.asarray(loudness, dtype=np.float32),
            audio_duration=payload.get("duration"),
            cepstrum=None if cepstrum is None else np.asarray(cepstrum, dtype=np.float32).reshape(-1, CEPSTRUM_COEFFICIENTS),
            voice_signature=None if signature is None else np.asarray(signature, dtype=np.float32),
            **parameters,
        )


def _fit_frames(values: np.ndarray, count: int) -> np.ndarray:
    """Per-frame values cut or zero-padded to ``count`` frames."""
    values = values[:count]
    if len(values) < count:
        values = np.pad(values, [(0, count - len(values))] + [(0, 0)] * (values.ndim - 1))
    return values


def _frame_count(duration: float, fps: float) -> int:
    return max(1, int(math.ceil(duration * fps - 1e-9)))


def trajectory_from_phonemes(
    phonemes: list[PhonemeEvent],
    samples: np.ndarray,
    sample_rate: int,
    fps: float = 25.0,
    *,
    alphabet: str = "espeak",
    words: list[WordEvent] | None = None,
) -> Trajectory:
    """The mouth trajectory for a phoneme timeline (``alphabet`` "espeak" or "arpabet")."""
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError("fps must be a positive number")
    duration = len(samples) / sample_rate
    frame_times = np.arange(_frame_count(duration, fps)) / fps
    segments = segments_from_phonemes(phonemes, duration, alphabet)
    segments, held = hold_short_pauses(segments)
    segments = resolve_borrowers(segments)
    if not segments:
        segments = [Segment(0.0, max(duration, 1.0 / fps), "sil", DOMINANCE["sil"], PAUSE)]

    params = blend(segments, frame_times, fps)
    loudness = _fit_frames(frame_loudness(samples, sample_rate, fps), len(frame_times))
    params[:, 0] *= loudness_gain(loudness, frame_times, segments, held)
    relax_in_silence(params, segments, frame_times, duration)

    labels = frame_labels(segments, frame_times)
    for index in closure_frames(segments, frame_times, fps):
        labels[index] = "PP"
    labels = enforce_min_run(labels)
    for index, label in enumerate(labels):
        if label == "PP":
            params[index] = TARGETS["PP"]
    params = np.clip(params, 0.0, 1.0).astype(np.float32)
    columns = {name: params[:, i].copy() for i, name in enumerate(PARAMETERS)}
    cepstrum, signature = cepstrum_and_signature(samples, sample_rate, fps)
    return Trajectory(
        fps=float(fps),
        visemes=labels,
        phonemes=list(phonemes),
        words=list(words or []),
        loudness=loudness.astype(np.float32),
        audio_duration=duration,
        cepstrum=_fit_frames(cepstrum, len(frame_times)),
        voice_signature=signature,
        **columns,
    )


def trajectory_from_speech(speech: Speech, fps: float = 25.0) -> Trajectory:
    """Trajectory for synthesized speech, from espeak's exact phoneme timings."""
    return trajectory_from_phonemes(
        speech.phonemes, speech.samples, speech.sample_rate, fps, alphabet="espeak", words=speech.words
    )


def trajectory_from_audio(samples: np.ndarray, sample_rate: int, fps: float = 25.0, **recognition) -> Trajectory:
    """Trajectory for a recorded voice track: VAD + PocketSphinx phones + loudness.
    ``recognition``: ``local_share`` and ``stop`` for ``speech.recognize``."""
    from ..speech import resample
    from ..speech.recognition import SAMPLE_RATE, recognize

    samples16k = resample(samples, sample_rate, SAMPLE_RATE)
    phones = recognize(samples16k, **recognition)
    return trajectory_from_phonemes(phones, samples, sample_rate, fps, alphabet="arpabet")
