"""Unit selection's closures for recognised p/b/m: the speaker's own early timing, as far as
the lips still close in time with the bilabial's sound."""

from __future__ import annotations

import math

import numpy as np

from engine import visemes
from engine.lipsync.planner import SEEN_LATE_S, _closed_into_sound
from engine.speech import PhonemeEvent

FPS = 30.0


def _heard_closures(phones: list[tuple[float, float, str]], seconds: float = 2.0):
    """The trajectory's closed (PP) frames at the sound's time for these recognised phones."""
    events = [PhonemeEvent(start, end, phone) for start, end, phone in phones]
    samples = np.random.default_rng(0).normal(0.0, 0.05, int(seconds * 16000)).astype(np.float32)
    trajectory = visemes.trajectory_from_phonemes(events, samples, 16000, FPS, alphabet="arpabet")
    return events, np.array([label == "PP" for label in trajectory.visemes])


def _closed_near(closed: np.ndarray, event: PhonemeEvent) -> bool:
    """Is some closed frame within SEEN_LATE_S of the event (what a viewer sees as in time)?"""
    first = math.ceil((event.start - SEEN_LATE_S) * FPS - 1e-9)
    last = math.floor((event.end + SEEN_LATE_S) * FPS + 1e-9)
    return bool(closed[max(0, first) : last + 1].any())


def test_the_lips_close_early_by_the_speakers_lead_but_still_with_the_sound():
    events, heard = _heard_closures([(0.5, 0.62, "AA"), (0.62, 0.74, "P"), (0.74, 0.9, "AA")])
    assert heard.any()
    closed = _closed_into_sound(heard, events, FPS, lag=3)
    assert closed.sum() == heard.sum()  # moved, not stretched: no more frames forced shut
    assert np.flatnonzero(closed)[0] < np.flatnonzero(heard)[0]
    assert _closed_near(closed, events[1])
    assert np.array_equal(_closed_into_sound(heard, events, FPS, lag=0), heard)


def test_two_bilabials_in_one_closure_and_one_at_the_very_start_each_keep_a_closed_frame():
    phones = [(0.0, 0.08, "M"), (0.08, 0.3, "AA"), (0.8, 0.9, "AH"), (0.9, 0.95, "M"), (0.95, 1.01, "P"),
              (1.01, 1.2, "IY")]
    events, heard = _heard_closures(phones)
    closed = _closed_into_sound(heard, events, FPS, lag=6)
    bilabials = [event for event in events if event.phoneme in ("M", "P")]
    assert all(_closed_near(closed, event) for event in bilabials)
    assert closed.sum() == heard.sum()
