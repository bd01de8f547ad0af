"""What keeps a still face alive besides the mouth: blinks and small head movements.

Both are deterministic (seeded), so a render is reproducible frame for frame.

- Blinks: 15–26 a minute (mean interval 3 s ≈ 20/min), each 150–250 ms (a fast close, a
  short hold, a slower opening). A blink due within a second of a pause in the speech is
  moved into it, as people blink between phrases.
- Head: a nod (the head dips and comes back, at most 3°) on stressed syllables — prominent
  peaks of the speech loudness — plus a slow drift of at most 1° in each direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BLINK_MEAN_INTERVAL_S = 3.0
BLINK_MIN_INTERVAL_S = 1.6
BLINK_MAX_INTERVAL_S = 4.2
BLINK_DURATION_S = (0.15, 0.25)
PAUSE_PULL_S = (-0.8, 1.2)  # a blink due this far before/after a pause start moves into it
PAUSE_MIN_S = 0.25
NOD_MAX_DEG = 3.0
NOD_DURATION_S = 0.5
NOD_MIN_SPACING_S = 0.6
DRIFT_MAX_DEG = 1.0


@dataclass
class Life:
    """Per output frame: eye closure (0 open … 1 shut) and head angles in degrees."""

    eyes: np.ndarray
    pitch: np.ndarray  # nod + drift; positive: the face moves down
    yaw: np.ndarray  # drift; positive: the face moves to the image's right
    roll: np.ndarray  # drift; positive: clockwise in the image
    blinks: list[tuple[float, float]]  # (start, duration) in seconds


def loudness_db(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    from ..speech import frame_loudness

    rms = frame_loudness(np.asarray(samples, np.float32), sample_rate, fps)
    rms = np.pad(rms[:n_frames], (0, max(0, n_frames - len(rms))))
    db = 20 * np.log10(np.maximum(rms, 1e-9))
    top = float(np.percentile(db, 97)) if len(db) else 0.0
    return np.maximum(db, top - 40.0)


def pauses(db: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """Quiet runs of at least ``PAUSE_MIN_S`` (seconds): 25 dB under the loud level."""
    if not len(db):
        return []
    quiet = db < float(np.percentile(db, 97)) - 25.0
    runs, start = [], None
    for k, q in enumerate(list(quiet) + [False]):
        if q and start is None:
            start = k
        elif not q and start is not None:
            if (k - start) / fps >= PAUSE_MIN_S:
                runs.append((start / fps, k / fps))
            start = None
    return runs


def blink_schedule(seconds: float, quiet: list[tuple[float, float]], seed: int = 0) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    blinks: list[tuple[float, float]] = []
    t = float(rng.uniform(0.6, 2.2))
    while t < seconds:
        duration = float(rng.uniform(*BLINK_DURATION_S))
        for start, end in quiet:
            if PAUSE_PULL_S[0] <= start - t <= PAUSE_PULL_S[1] and end - start >= duration + 0.1:
                candidate = start + 0.08
                if not blinks or candidate - blinks[-1][0] >= BLINK_MIN_INTERVAL_S:
                    t = candidate
                break
        if t + duration > seconds:
            break
        blinks.append((t, duration))
        interval = float(np.clip(rng.gamma(6.0, BLINK_MEAN_INTERVAL_S / 6.0), BLINK_MIN_INTERVAL_S, BLINK_MAX_INTERVAL_S))
        t += interval
    return blinks


def blink_closure(t: np.ndarray, blinks: list[tuple[float, float]]) -> np.ndarray:
    """Eye closure at times ``t``: closing in 35 % of the blink, shut for 15 %, opening in 50 %."""
    out = np.zeros_like(t, dtype=np.float64)
    for start, duration in blinks:
        x = (t - start) / duration
        closing = np.clip(x / 0.35, 0, 1)
        opening = np.clip((x - 0.5) / 0.5, 0, 1)
        c = np.where(x < 0.35, np.sin(closing * math.pi / 2) ** 2, np.where(x < 0.5, 1.0, np.cos(opening * math.pi / 2) ** 2))
        out = np.maximum(out, np.where((x >= 0) & (x <= 1), c, 0.0))
    return out


def nods(db: np.ndarray, fps: float) -> np.ndarray:
    """Pitch (degrees) of nods on the stressed syllables: prominent loudness peaks."""
    from scipy.signal import find_peaks

    n = len(db)
    pitch = np.zeros(n)
    if n < 3:
        return pitch
    kernel = np.hanning(max(3, int(0.12 * fps)) | 1)
    smooth = np.convolve(db, kernel / kernel.sum(), mode="same")
    peaks, props = find_peaks(smooth, prominence=6.0, distance=max(1, int(NOD_MIN_SPACING_S * fps)))
    if not len(peaks):
        return pitch
    prominence = props["prominences"]
    strong = prominence >= np.percentile(prominence, 40)
    span = max(float(np.ptp(smooth)), 1e-6)
    length = max(2, int(round(NOD_DURATION_S * fps)))
    shape = np.sin(np.linspace(0, math.pi, length)) ** 2
    for peak, prom, keep in zip(peaks, prominence, strong):
        if not keep:
            continue
        amplitude = NOD_MAX_DEG * float(np.clip(0.4 + 0.6 * prom / span, 0, 1))
        start = max(0, peak - length // 4)
        piece = shape[: n - start] * amplitude
        pitch[start:start + len(piece)] = np.maximum(pitch[start:start + len(piece)], piece)
    return pitch


def drift(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """A slow wander within ±``DRIFT_MAX_DEG``: three slow sines with seeded periods and phases."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for _ in range(3):
        period = rng.uniform(4.0, 11.0)
        out += np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    return DRIFT_MAX_DEG * out / 3.0


def plan_life(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int, seed: int = 0) -> Life:
    db = loudness_db(samples, sample_rate, fps, n_frames)
    rng = np.random.default_rng(seed + 1)
    blinks = blink_schedule(n_frames / fps, pauses(db, fps), seed)
    t = np.arange(n_frames) / fps
    pitch = np.clip(nods(db, fps) + drift(n_frames, fps, rng) * 0.6, -DRIFT_MAX_DEG, NOD_MAX_DEG + 0.6 * DRIFT_MAX_DEG)
    pitch = np.minimum(pitch, NOD_MAX_DEG)
    return Life(eyes=blink_closure(t, blinks), pitch=pitch, yaw=drift(n_frames, fps, rng), roll=drift(n_frames, fps, rng),
                blinks=blinks)
