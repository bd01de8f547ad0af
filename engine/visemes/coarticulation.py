"""Coarticulation: segment shapes blended per frame by dominance functions, and the loudness gain.

Each segment's dominance is its strength inside the segment and decays exponentially outside
it (Cohen & Massaro), reaching at most ``ANTICIPATION_LIMIT`` back and ``CARRYOVER_LIMIT``
forward. The jaw opening is then scaled by the smoothed loudness (``loudness_gain``).
"""

from __future__ import annotations

import numpy as np

from .mapping import PARAMETERS, REST, TARGETS
from .segments import Segment

ANTICIPATION_LIMIT = 0.200  # no segment reaches further back than this
CARRYOVER_LIMIT = 0.150
_SUBSAMPLES = 5


def blend(segments: list[Segment], frame_times: np.ndarray, fps: float) -> np.ndarray:
    """Dominance-weighted shape per frame, averaged over sub-samples of the frame period."""
    offsets = (np.arange(_SUBSAMPLES) - (_SUBSAMPLES - 1) / 2) / (_SUBSAMPLES * fps)
    times = (frame_times[:, None] + offsets[None, :]).reshape(-1)
    # a whisper of rest dominance everywhere, so frames far from any segment are at rest
    weights = np.full(times.shape, 1e-4)
    shapes = weights[:, None] * np.array(REST)[None, :]
    for segment in segments:
        first = np.searchsorted(times, segment.start - ANTICIPATION_LIMIT)
        last = np.searchsorted(times, segment.end + CARRYOVER_LIMIT)
        if last <= first:
            continue
        t = times[first:last]
        dominance = segment.dominance
        before = np.exp(-np.maximum(segment.start - t, 0.0) / dominance.anticipation)
        after = np.exp(-np.maximum(t - segment.end, 0.0) / dominance.carryover)
        weight = dominance.strength * before * after
        weights[first:last] += weight
        shapes[first:last] += weight[:, None] * np.array(TARGETS[segment.viseme])[None, :]
    blended = shapes / weights[:, None]
    return blended.reshape(len(frame_times), _SUBSAMPLES, len(PARAMETERS)).mean(axis=1)


def loudness_gain(
    loudness: np.ndarray, frame_times: np.ndarray, segments: list[Segment], held: list[tuple[float, float]]
) -> np.ndarray:
    """Jaw scale from the smoothed loudness: 0.5 for a murmur up to 1.1 for the loud parts."""
    level = loudness.astype(np.float64).copy()
    for start, end in held:  # a held pause holds the loudness of the sound before it
        inside = (frame_times >= start) & (frame_times < end)
        before = np.flatnonzero(frame_times < start)
        if inside.any() and before.size:
            level[inside] = level[before[-1]]
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])  # ~±2 frames: follows syllables, not pitch periods
    smoothed = np.convolve(np.pad(level, 2, mode="edge"), kernel / kernel.sum(), mode="valid")
    speaking = np.zeros(len(frame_times), dtype=bool)
    for segment in segments:
        if segment.viseme != "sil":
            speaking |= (frame_times >= segment.start) & (frame_times < segment.end)
    reference = float(np.percentile(smoothed[speaking], 90)) if speaking.any() else 0.0
    if reference <= 1e-6:
        return np.ones(len(frame_times))
    return np.clip(0.5 + 0.6 * smoothed / reference, 0.5, 1.1)
