"""engine.visemes.trajectory: determinism, JSON, speed, and a real voice track."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from engine import speech, visemes
from engine.devmedia import shared_media

from .helpers import BILABIAL_SENTENCE, viseme_runs

JFK = shared_media("jfk_inaugural_11s.wav")


def test_trajectory_is_deterministic():
    result = speech.synthesize(BILABIAL_SENTENCE)
    first = visemes.trajectory_from_speech(result, 25)
    second = visemes.trajectory_from_speech(result, 25)
    assert first.to_json() == second.to_json()
    samples = speech.resample(result.samples, result.sample_rate, 16000)
    assert (
        visemes.trajectory_from_audio(samples, 16000, 25).to_json()
        == visemes.trajectory_from_audio(samples, 16000, 25).to_json()
    )


def test_json_round_trip_and_shape():
    result = speech.synthesize(BILABIAL_SENTENCE)
    trajectory = visemes.trajectory_from_speech(result, 25)
    assert trajectory.frame_count == int(np.ceil(result.duration * 25))
    payload = json.loads(trajectory.to_json())
    assert payload["fps"] == 25 and payload["frame_count"] == trajectory.frame_count
    assert set(payload["parameters"]) == set(visemes.PARAMETERS)
    assert all(len(v) == trajectory.frame_count for v in payload["parameters"].values())
    assert [w["text"] for w in payload["words"]] == BILABIAL_SENTENCE.split()
    back = visemes.Trajectory.from_json(trajectory.to_json())
    assert back.visemes == trajectory.visemes
    assert np.allclose(back.parameters(), trajectory.parameters(), atol=1e-4)
    assert back.cepstrum.shape == (trajectory.frame_count, speech.CEPSTRUM_COEFFICIENTS)
    assert np.allclose(back.cepstrum, trajectory.cepstrum, atol=1e-3)
    assert back.duration == pytest.approx(result.duration, abs=1e-5)
    assert back.frame(3)["viseme"] == trajectory.visemes[3]


def test_thirty_second_script_synthesizes_and_animates_fast():
    text = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 8)
    began = time.perf_counter()
    result = speech.synthesize(text)
    trajectory = visemes.trajectory_from_speech(result, 25)
    elapsed = time.perf_counter() - began
    assert result.duration > 25 and trajectory.frame_count > 600
    assert elapsed < 2.0, elapsed


def test_real_voice_track_gives_a_trajectory():
    if not JFK.exists():
        pytest.skip("shared media not present")
    samples = speech.load_audio(JFK)
    trajectory = visemes.trajectory_from_audio(samples, 16000, 25)
    assert trajectory.frame_count == 275
    assert not [run for run in viseme_runs(trajectory.visemes) if run[1] < 2 and run[0] != "oh"]
    # the long pause after "Americans" (about 2.3–3.1 s) is closed, speech is not
    times = trajectory.times
    pause = (times > 2.4) & (times < 3.0)
    assert (trajectory.closure[pause] == 1).all()
    assert trajectory.jaw[(times > 0.3) & (times < 2.1)].max() > 0.5
    # bilabials heard by the recogniser are closed
    for event in trajectory.phonemes:
        if event.phoneme in ("P", "B", "M"):
            near = (times >= event.start - 0.06) & (times <= event.end + 0.02)
            assert (trajectory.closure[near] >= 1).any(), event
