"""engine.speech.voices: every espeak-ng language as a male and a female voice."""

from __future__ import annotations

import numpy as np

from engine import speech
from tests.engine.speech.helpers import SENTENCE


def test_voices_offer_male_and_female_per_language_sorted():
    voices = speech.list_voices()
    assert len(voices) > 100
    assert voices == sorted(voices, key=lambda v: (v.language.lower(), v.name))
    by_id = {v.id: v for v in voices}
    assert by_id["en-us"].language == "en-US" and by_id["en-us"].gender == "male"
    assert by_id["en-us+f3"].gender == "female"
    assert by_id["en-us+f3"].name == "English (America) — female 3"
    assert by_id["fr"].language == "fr-FR"
    for base in (v for v in voices if "+" not in v.id):
        genders = {v.gender for v in voices if v.id.split("+")[0] == base.id}
        assert genders == {"male", "female"}, base


def test_every_listed_voice_speaks_its_sample_sentence():
    for voice in speech.list_voices():
        result = speech.synthesize(speech.sample_sentence(voice), voice=voice.id)
        assert result.duration > 0.5, voice
        assert any(p.phoneme != speech.PAUSE for p in result.phonemes), voice


def test_sample_sentence_follows_language_with_english_fallback():
    assert speech.sample_sentence(speech.Voice("de", "German — male", "de", "male")).startswith("Hallo")
    assert speech.sample_sentence(speech.Voice("xx", "X", "xx", "male")).startswith("Hello")


def test_female_variant_sounds_higher():
    def median_pitch(samples: np.ndarray, rate: int) -> float:
        # autocorrelation pitch of voiced 40 ms windows
        window = int(0.04 * rate)
        pitches = []
        for start in range(0, len(samples) - window, window):
            chunk = samples[start : start + window]
            if np.sqrt(np.mean(chunk**2)) < 0.05:
                continue
            corr = np.correlate(chunk, chunk, "full")[window - 1 :]
            lo, hi = rate // 400, rate // 70
            pitches.append(rate / (lo + int(np.argmax(corr[lo:hi]))))
        return float(np.median(pitches))

    male = speech.synthesize(SENTENCE, voice="en-us")
    female = speech.synthesize(SENTENCE, voice="en-us+f3")
    assert median_pitch(female.samples, female.sample_rate) > 1.3 * median_pitch(
        male.samples, male.sample_rate
    )
