"""Machine transcription beside a render (``speech.BackgroundTranscription``)."""

from __future__ import annotations

import time

import numpy as np

from engine import speech
from engine.speech import alignment


def test_background_transcription_words_come_from_the_child_even_when_collected_late(monkeypatch):
    spoken = speech.synthesize("Please call Stella and ask her to bring these things with her.", voice="en-us")
    samples = np.concatenate([np.zeros(8000, np.float32), spoken.samples.astype(np.float32)])
    expected = speech.transcribe(samples, spoken.sample_rate)
    assert expected
    pending = speech.BackgroundTranscription(samples, spoken.sample_rate)
    # collected long after the child has its input, as a render does after its frames
    deadline = time.monotonic() + 30
    while pending._feeder.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)

    def here(*args, **kwargs):
        raise AssertionError("transcribed again in the render's own process")

    monkeypatch.setattr(alignment, "transcribe", here)
    words = pending.result()
    assert [w.text for w in words] == [w.text for w in expected]
    assert all(abs(a.start - b.start) < 1e-6 and abs(a.end - b.end) < 1e-6 for a, b in zip(words, expected))


def test_the_shipped_caption_dictionary_is_the_one_the_bundled_model_gives():
    from engine.speech import recognition

    with open(recognition.CAPTION_DICTIONARY, encoding="utf-8") as handle:
        shipped = handle.read().splitlines()
    assert shipped == recognition.caption_dictionary_lines(), (
        "rebuild it: python -c 'from engine.speech.recognition import write_caption_dictionary as w; w()'"
    )
    spellings = {line.split(" ", 1)[0].split("(", 1)[0] for line in shipped}
    assert len(spellings) == recognition.CAPTION_WORDS
    # everyday words a caption needs are in; a rare name the full dictionary has is not
    assert {"the", "families", "celebration", "football", "newspaper"} <= spellings
    assert "zywicki" not in spellings
