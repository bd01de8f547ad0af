"""The mouth state: the per-speaker model for the footage's own sound, the speaker-independent
mouth for every other voice, and older libraries still work."""

from __future__ import annotations

import numpy as np
import pytest

from engine import speech, visemes
from engine.lipsync import Library, model_inputs, predict_state
from engine.lipsync.mouth_model import (
    LAYOUT_LEGACY,
    LAYOUT_LEGACY_HEARD,
    fit_model,
    own_voice_share,
    uses_loudness_model,
)

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
    # libraries prepared before: one whose model heard the sound at single lags and read the
    # viseme classes, with its voice kept, is still predicted by its own model …
    lib.model = fit_model(model_inputs(trajectory, n, layout=LAYOUT_LEGACY_HEARD), lib.state[:n], rows)
    lib.model["voice_signature"] = trajectory.voice_signature
    heard = predict_state(lib, trajectory)
    assert np.corrcoef(heard[rows, 0], lib.state[rows, 0])[0, 1] > 0.6
    # … and one prepared before the model heard the sound (nor kept its voice) gets the
    # speaker-independent mouth, which still follows the speech
    lib.model = fit_model(model_inputs(trajectory, n, layout=LAYOUT_LEGACY), lib.state[:n], rows)
    older = predict_state(lib, trajectory)
    assert older.shape == predicted.shape
    assert np.corrcoef(older[rows, 0], lib.state[rows, 0])[0, 1] > 0.3


def test_where_the_footage_finds_loudness_a_better_guide_renders_follow_loudness(library, speaking):
    path, _ = library
    lib = Library.load(path)
    # preparation measured both models on the footage itself
    assert np.isfinite(float(lib.model["cv_r"])) and np.isfinite(float(lib.model["loudness_cv_r"]))
    trajectory = visemes.trajectory_from_audio(speech.load_audio(speaking), 16000, lib.fps)
    rows = np.flatnonzero(lib.usable[: min(trajectory.frame_count, lib.frame_count)])
    full = predict_state(lib, trajectory)
    lib.model["cv_r"] = np.float32(float(lib.model["loudness_cv_r"]) - 0.1)  # as if the phones meant nothing
    assert uses_loudness_model(lib.model)
    loud = predict_state(lib, trajectory)
    assert not np.allclose(loud, full)
    assert np.corrcoef(loud[rows, 0], lib.state[rows, 0])[0, 1] > 0.3


def test_only_a_voice_like_the_footages_own_is_predicted_by_its_model():
    signature = np.linspace(-1.0, 1.0, 12).astype(np.float32)
    assert own_voice_share(signature, signature) == 1.0
    assert own_voice_share(signature, None) == 0.0 and own_voice_share(None, signature) == 0.0
    tilted = signature + np.linspace(0.0, 3.0, 12).astype(np.float32)  # another microphone's tilt
    assert own_voice_share(signature, tilted) == 0.0


def _telephone(samples: np.ndarray, rate: int) -> np.ndarray:
    """The same kind of voice through another channel: a 300–3400 Hz band, as on a phone."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, [300, 3400], btype="band", fs=rate, output="sos"), samples).astype(np.float32)


def test_another_voice_rests_in_pauses_and_opens_as_wide_as_the_person(library):
    path, _ = library
    lib = Library.load(path)
    spoken = speech.synthesize("Bonjour à tous. Merci d'être venus si nombreux aujourd'hui.", voice="fr")
    silence = np.zeros(int(0.9 * spoken.sample_rate), np.float32)
    samples = _telephone(np.concatenate([spoken.samples, silence, spoken.samples]), spoken.sample_rate)
    trajectory = visemes.trajectory_from_audio(samples, spoken.sample_rate, lib.fps)
    assert own_voice_share(lib.model["voice_signature"], trajectory.voice_signature) == 0.0
    predicted = predict_state(lib, trajectory)[:, 0]

    speaking_here = np.array([label != "sil" for label in trajectory.visemes])
    footage_speaking = lib.usable & (lib.visemes > 0)
    own = lib.state[footage_speaking, 0]
    for q in (50, 90):
        ratio = np.percentile(predicted[speaking_here], q) / np.percentile(own, q)
        assert 0.75 <= ratio <= 1.25, (q, ratio)
    # the middle of the 0.9-s pause: the person's rest
    pause = slice(int((spoken.duration + 0.25) * lib.fps), int((spoken.duration + 0.65) * lib.fps))
    rest = np.percentile(lib.state[lib.usable & (lib.visemes == 0), 0], 10)
    speaking_range = np.percentile(own, 90) - rest
    assert np.all(predicted[pause] <= rest + 0.2 * speaking_range)
