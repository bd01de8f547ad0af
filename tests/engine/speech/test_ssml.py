"""engine.speech.ssml: the script rules and SSML, as espeak-ng speaks it."""

from __future__ import annotations

import numpy as np
import pytest

from engine import speech
from tests.engine.speech.helpers import rejected


def test_ssml_break_adds_half_a_second_of_silence():
    plain = speech.synthesize("<speak>Hello there my friend</speak>")
    paused = speech.synthesize('<speak>Hello there <break time="500ms"/> my friend</speak>')
    silence = lambda result: sum(  # noqa: E731
        p.end - p.start for p in result.phonemes if p.phoneme == speech.PAUSE
    )
    assert silence(paused) - silence(plain) == pytest.approx(0.5, abs=0.03)
    # the rest is espeak lengthening the word before the pause, as at a comma
    assert 0.45 < paused.duration - plain.duration < 0.75
    pauses = [p for p in paused.phonemes if p.phoneme == speech.PAUSE and p.end - p.start > 0.4]
    assert len(pauses) == 1
    gap = pauses[0]
    assert gap.end - gap.start == pytest.approx(0.5, abs=0.03)
    rate = paused.sample_rate
    middle = paused.samples[int((gap.start + 0.05) * rate) : int((gap.end - 0.05) * rate)]
    assert np.abs(middle).max() < 0.01
    friend = [w for w in paused.words if w.text == "my"][0]
    assert friend.start >= gap.end - 1e-9


def test_ssml_prosody_say_as_and_espeak_phonemes():
    text = (
        '<speak><prosody rate="slow" pitch="high">Slow words</prosody> '
        '<say-as interpret-as="characters">abc</say-as> and a '
        '<phoneme alphabet="x-espeak" ph="t@m\'A:toU">tomato</phoneme>.</speak>'
    )
    result = speech.synthesize(text)
    phonemes = [p.phoneme for p in result.phonemes]
    assert "A:" in phonemes  # the British "tomato" from the ph attribute, not "eI"
    words = [w.text for w in result.words]
    assert words[:2] == ["Slow", "words"] and words[-1] == "tomato"
    assert "dot" not in " ".join(phonemes)  # no stray "." read aloud after the element
    assert phonemes[-1] == speech.PAUSE and "d" not in phonemes[-4:]


def test_ssml_words_are_unescaped():
    result = speech.synthesize("<speak>Salt &amp; pepper</speak>")
    assert [w.text for w in result.words] == ["Salt", "&", "pepper"]


# ----------------------------------------------------------------------------- bad scripts


@pytest.mark.parametrize("text", ["", "   ", "\n\t  "])
def test_empty_script_is_rejected(text):
    error = rejected(speech.synthesize, text, field="script")
    assert "empty" in str(error)


def test_short_and_long_scripts_are_rejected_with_counts():
    error = rejected(speech.validate_script, "  Hi! ", field="script")
    assert str(error) == "The script is 3 characters long; it needs at least 4."
    error = rejected(speech.validate_script, "a" * 2315, field="script")
    assert str(error) == "The script is 2,315 characters long; keep it to 2,000 or fewer."
    assert speech.validate_script("  " + "é" * 2000 + "  ") == "é" * 2000  # unicode chars
    speech.validate_script("<speak>" + "a" * 1990 + '<break time="1s"/></speak>')  # tags free


def test_invalid_ssml_names_line_and_column():
    error = rejected(speech.validate_script, "<speak>Hello <b>there</speak>", field="script")
    assert str(error) == "The script's SSML is not valid at line 1, column 24: mismatched tag."
    error = rejected(speech.validate_script, "<speak>\nHello &nbsp; there</speak>", field="script")
    assert "line 2, column 7" in str(error)
    rejected(speech.validate_script, "<speak>  <break time='1s'/> </speak>", field="script")
