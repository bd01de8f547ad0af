"""engine.visemes.segments: held pauses and diphthongs split in time."""

from __future__ import annotations

import numpy as np

from engine import visemes
from engine.speech import PhonemeEvent


def _vowel_pause_vowel(pause: float) -> tuple[list[PhonemeEvent], np.ndarray]:
    rate = 16000
    events = [
        PhonemeEvent(0.3, 0.6, "AA"),
        PhonemeEvent(0.6 + pause, 0.9 + pause, "AA"),
    ]
    samples = np.zeros(int((1.3 + pause) * rate), np.float32)
    for event in events:
        t = np.arange(int(event.start * rate), int(event.end * rate))
        samples[t] = 0.3 * np.sin(2 * np.pi * 180 * t / rate)
    return events, samples


def test_short_pauses_hold_and_long_pauses_relax():
    events, samples = _vowel_pause_vowel(0.08)
    held = visemes.trajectory_from_phonemes(events, samples, 16000, 50, alphabet="arpabet")
    during = (held.times > 0.61) & (held.times < 0.67)
    assert (held.jaw[during] > 0.5).all() and (held.closure[during] < 0.2).all()
    assert set(held.visemes[i] for i in np.flatnonzero(during)) == {"aa"}

    events, samples = _vowel_pause_vowel(0.6)
    relaxed = visemes.trajectory_from_phonemes(events, samples, 16000, 50, alphabet="arpabet")
    middle = (relaxed.times > 0.75) & (relaxed.times < 1.05)
    assert (relaxed.closure[middle] == 1).all() and (relaxed.jaw[middle] == 0).all()


def test_diphthongs_are_split_in_time():
    rate = 16000
    samples = 0.2 * np.ones(int(1.2 * rate), np.float32)
    events = [PhonemeEvent(0.2, 0.8, "aI")]
    trajectory = visemes.trajectory_from_phonemes(events, samples, rate, 25, alphabet="espeak")
    labels = [
        trajectory.visemes[i] for i in range(trajectory.frame_count) if 0.2 <= trajectory.times[i] < 0.8
    ]
    assert labels[0] == "aa" and labels[-1] == "ih"
    assert labels.index("ih") > len(labels) // 2  # the first part is the longer one
    assert trajectory.width[int(0.75 * 25)] > trajectory.width[int(0.3 * 25)]
    assert visemes.phoneme_to_visemes("OW", "arpabet")[0] == ("oh", "ou")
    for diphthong in ("aI", "eI", "oU", "aU", "OI"):
        assert len(visemes.phoneme_to_visemes(diphthong)[0]) == 2
