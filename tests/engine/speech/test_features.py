"""engine.speech.features: loudness and mel cepstrum per output frame."""

from __future__ import annotations

import numpy as np
import pytest

from engine import speech


def test_frame_loudness_has_one_value_per_frame():
    samples = np.concatenate([np.zeros(8000), 0.5 * np.ones(8000)]).astype(np.float32)
    loudness = speech.frame_loudness(samples, 16000, 25)
    assert len(loudness) == 25
    assert loudness[2] == 0 and loudness[-2] == pytest.approx(0.5)


def test_frame_cepstrum_is_per_frame_and_independent_of_recording_gain(voice_track):
    samples, rate = voice_track.samples, voice_track.sample_rate
    cepstrum = speech.frame_cepstrum(samples, rate, 25)
    assert cepstrum.shape == (len(speech.frame_loudness(samples, rate, 25)), speech.CEPSTRUM_COEFFICIENTS)
    # a voice track recorded 20 dB quieter describes the same mouth
    quieter = speech.frame_cepstrum(samples * 0.1, rate, 25)
    speaking = cepstrum[:, 0] > -3.0
    assert speaking.mean() > 0.5
    # Of values spanning ±10; the spectrum's tiny absolute floor (log of power + 1e-8) moves
    # the quietest bands of a 20-dB-quieter take by up to ~0.1, depending on the voice.
    assert np.abs(quieter - cepstrum)[speaking].max() < 0.15
    # and so does one at another sample rate
    at_16k = speech.frame_cepstrum(speech.resample(samples, rate, 16000), 16000, 25)
    assert np.corrcoef(at_16k[speaking, 1], cepstrum[speaking, 1])[0, 1] > 0.95


def test_frame_cepstrum_floors_silence_below_speech():
    rng = np.random.default_rng(0)
    samples = np.concatenate([np.zeros(16000), 0.3 * rng.standard_normal(16000)]).astype(np.float32)
    cepstrum = speech.frame_cepstrum(samples, 16000, 25)
    assert cepstrum[5, 0] == pytest.approx(-np.log(1e5), abs=1e-3)
    assert cepstrum[40, 0] > -1.0
