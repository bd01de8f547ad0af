"""engine.visemes.rules: closed bilabials, minimum runs and rest in silence, on real espeak speech."""

from __future__ import annotations

import numpy as np
import pytest

from engine import speech, visemes

from .helpers import BILABIAL_SENTENCE, viseme_runs

BILABIALS = {"p", "b", "m"}


def _assert_bilabials_closed(result: speech.Speech, trajectory: visemes.Trajectory) -> int:
    times = trajectory.times
    half = 0.5 / trajectory.fps
    checked = 0
    for event in result.phonemes:
        if event.phoneme not in BILABIALS:
            continue
        # a fully closed frame in the 40–120 ms before the release (± half a frame of sampling)
        lead = min(max(event.end - event.start, visemes.CLOSURE_MIN), visemes.CLOSURE_MAX)
        window = (times >= event.end - lead - half) & (times <= event.end + half)
        closed = window & (trajectory.closure >= 1.0)
        assert closed.any(), (event, trajectory.fps)
        assert all(trajectory.visemes[i] == "PP" for i in np.flatnonzero(closed))
        assert (trajectory.jaw[closed] == 0).all() and (trajectory.teeth[closed] == 0).all()
        checked += 1
    return checked


# ----------------------------------------------------------------------------- hard rules


@pytest.mark.parametrize("fps", [24, 25, 30, 50, 60])
@pytest.mark.parametrize("speed", [0.5, 1.0, 1.5])
def test_every_bilabial_gets_a_closed_frame(fps, speed):
    result = speech.synthesize(BILABIAL_SENTENCE, speed=speed)
    trajectory = visemes.trajectory_from_speech(result, fps)
    spoken = [p.phoneme for p in result.phonemes]
    assert sum(p in BILABIALS for p in spoken) == 9  # b-b m p-m b m-p b
    assert _assert_bilabials_closed(result, trajectory) == 9


SENTENCES = [
    BILABIAL_SENTENCE,
    "Maybe, maybe not. Bubble bobble, pop pop pop!",
    "The quick brown fox jumps over the lazy dog; amazing, imaginable, impossible.",
    "She sells sea shells by the sea shore, and he thinks the fifth thing is fine.",
]


@pytest.mark.parametrize("fps", [24, 25, 30, 60])
@pytest.mark.parametrize("speed", [0.5, 1.0, 1.5])
def test_no_mouth_shape_lasts_less_than_two_frames(fps, speed):
    for text in SENTENCES:
        trajectory = visemes.trajectory_from_speech(speech.synthesize(text, speed=speed), fps)
        runs = viseme_runs(trajectory.visemes)
        # the one exception the rule makes: a single frame between two closures (fast
        # "p-a-m" at a low frame rate), where closing counts more than the open frame
        short = [
            run for i, run in enumerate(runs) if run[1] < visemes.MIN_RUN
            and not (0 < i < len(runs) - 1 and runs[i - 1][0] == runs[i + 1][0] == "PP")
        ]
        assert not short, (text, speed, fps, short)
        assert set(trajectory.visemes) <= set(visemes.VISEMES)


def test_min_run_rule_only_keeps_a_single_frame_between_two_closures():
    labels = ["sil", "PP", "aa", "aa", "E", "ih", "ih", "PP", "PP", "oh", "PP", "PP", "ou"]
    fixed = visemes.enforce_min_run(labels)
    assert len(fixed) == len(labels)
    runs = viseme_runs(fixed)
    for index, (label, length) in enumerate(runs):
        if length < 2:
            assert runs[index - 1][0] == "PP" and runs[index + 1][0] == "PP" and label == "oh"
    assert fixed.count("PP") >= labels.count("PP")  # closures are never given up


def test_mouth_rests_closed_in_silence():
    result = speech.synthesize('<speak>Hello there. <break time="1s"/> Are you ready?</speak>')
    trajectory = visemes.trajectory_from_speech(result, 25)
    pauses = [p for p in result.phonemes if p.phoneme == speech.PAUSE and p.end - p.start > 0.5]
    assert len(pauses) == 1
    pause = pauses[0]
    times = trajectory.times
    deep = (times >= pause.start + visemes.RELAX_TIME) & (times <= pause.end - visemes.RELAX_TIME)
    assert deep.sum() >= 15
    assert (trajectory.closure[deep] == 1).all() and (trajectory.jaw[deep] == 0).all()
    assert (trajectory.tuck[deep] == 0).all() and (trajectory.teeth[deep] == 0).all()
    assert all(trajectory.visemes[i] == "sil" for i in np.flatnonzero(deep))
    # and the mouth is open while talking on both sides of the pause
    assert trajectory.jaw[times < pause.start].max() > 0.4
    assert trajectory.jaw[times > pause.end].max() > 0.4
    # the clip starts at rest
    assert trajectory.closure[0] >= 0.8 and trajectory.jaw[0] <= 0.1
