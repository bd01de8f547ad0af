"""engine.visemes.coarticulation: dominance blending and the loudness gain."""

from __future__ import annotations

import numpy as np

from engine import speech, visemes
from engine.speech import PhonemeEvent


def _shape_at(events: list[PhonemeEvent], when: float, parameter: str, alphabet="arpabet") -> float:
    rate = 16000
    samples = 0.2 * np.ones(int((events[-1].end + 0.3) * rate), np.float32)
    trajectory = visemes.trajectory_from_phonemes(events, samples, rate, 100, alphabet=alphabet)
    return float(getattr(trajectory, parameter)[int(round(when * 100))])


def _timeline(*phones: str, length: float = 0.08, start: float = 0.3) -> list[PhonemeEvent]:
    return [PhonemeEvent(start + i * length, start + (i + 1) * length, p) for i, p in enumerate(phones)]


def test_weak_consonants_take_their_neighbours_shape():
    # the /t/ between two open vowels stays open; between two rounded vowels it stays round
    open_t = _shape_at(_timeline("AA", "T", "AA"), 0.42, "jaw")
    assert open_t > 0.6 * visemes.TARGETS["aa"][0]
    round_t = _shape_at(_timeline("UW", "T", "UW"), 0.42, "round")
    assert round_t > 0.7
    # a strong /f/ between the same vowels keeps its own lip tuck
    assert _shape_at(_timeline("AA", "F", "AA"), 0.42, "tuck") > 0.75


def test_vowels_are_anticipated_over_preceding_consonants():
    # lip rounding for "oo" starts during "st" (anticipation), not for "ee"
    rounded = _shape_at(_timeline("S", "T", "UW", length=0.06), 0.39, "round")
    spread = _shape_at(_timeline("S", "T", "IY", length=0.06), 0.39, "round")
    assert rounded > spread + 0.3
    # but no further back than ~200 ms
    far = _timeline("AA", "SIL", "SIL", "SIL", "SIL", "UW", length=0.1)
    far = [e for e in far if e.phoneme != "SIL"]
    assert _shape_at(far, 0.45, "round") < 0.05


def test_bilabial_closure_is_anticipated_and_released():
    events = _timeline("AA", "P", "AA", length=0.1)
    rate = 16000
    samples = 0.2 * np.ones(int(0.9 * rate), np.float32)
    trajectory = visemes.trajectory_from_phonemes(events, samples, rate, 100, alphabet="arpabet")
    closure = trajectory.closure
    assert closure[45] == 1 and closure[49] == 1  # closed up to the release at 0.5 s
    assert 0.1 < closure[39] < 1  # lips already closing before the P starts
    assert closure[56] < 0.5  # and open again soon after the release


def test_jaw_opening_scales_with_loudness():
    result = speech.synthesize("Papa papa papa. Papa papa papa.")
    samples = result.samples.copy()
    half = len(samples) // 2
    samples[half:] *= 0.15  # the second sentence whispered
    trajectory = visemes.trajectory_from_phonemes(result.phonemes, samples, result.sample_rate, 25)
    cut = half / result.sample_rate
    loud = trajectory.jaw[trajectory.times < cut].max()
    quiet = trajectory.jaw[trajectory.times >= cut].max()
    assert quiet < 0.75 * loud
