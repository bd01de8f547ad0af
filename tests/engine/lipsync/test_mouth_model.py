"""The per-speaker mouth-state model: it hears the sound, and older libraries still work."""

from __future__ import annotations

import numpy as np
import pytest

from engine import speech, visemes
from engine.lipsync import Library, model_inputs, predict_state
from engine.lipsync.mouth_model import fit_model

# Each builds or renders a real mouth library: the engine end to end.
pytestmark = pytest.mark.slow


def test_the_mouth_model_hears_the_sound_and_still_reads_older_libraries(library, speaking):
    path, _ = library
    lib = Library.load(path)
    trajectory = visemes.trajectory_from_audio(speech.load_audio(speaking), 16000, lib.fps)
    n = min(trajectory.frame_count, lib.frame_count)
    inputs = model_inputs(trajectory)
    assert inputs.shape[1] == len(lib.model["x_mean"])  # trajectory and cepstrum, lagged
    rows = np.flatnonzero(lib.usable[:n])
    predicted = predict_state(lib, trajectory)
    assert np.corrcoef(predicted[rows, 0], lib.state[rows, 0])[0, 1] > 0.6
    # a library prepared before the model heard the sound: the trajectory alone
    lib.model = fit_model(model_inputs(trajectory, n, cepstrum=False), lib.state[:n], rows)
    older = predict_state(lib, trajectory)
    assert older.shape == predicted.shape
    assert np.corrcoef(older[rows, 0], lib.state[rows, 0])[0, 1] > 0.3
