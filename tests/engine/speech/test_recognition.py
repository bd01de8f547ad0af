"""engine.speech.recognition: energy VAD and real PocketSphinx phone recognition (no mocks)."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from engine import speech, visemes
from engine.errors import Cancelled
from engine.speech import recognition
from tests.engine.speech.helpers import JFK

ARPABET = set(visemes.ARPABET_TO_VISEME) | {"HH"}


def _overlap(event, start: float, end: float) -> float:
    return max(0.0, min(event.end, end) - max(event.start, start))


def _loudness_stretches(samples: np.ndarray, rate: int) -> tuple[list, list]:
    """Independent of the VAD: clearly loud stretches (speech) and clearly quiet ones (≥ 0.3 s)."""
    hop = rate // 100
    rms = np.sqrt(np.mean(samples[: len(samples) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    floor = np.percentile(rms, 10)
    loud = rms > 0.25 * rms.max()
    quiet = rms < 2.0 * floor + 1e-4

    def stretches(mask: np.ndarray, minimum: float) -> list[tuple[float, float]]:
        found, begin = [], None
        for index, flag in enumerate(np.append(mask, False)):
            if flag and begin is None:
                begin = index
            elif not flag and begin is not None:
                if (index - begin) / 100 >= minimum:
                    found.append((begin / 100, index / 100))
                begin = None
        return found

    return stretches(loud, 0.1), stretches(quiet, 0.3)


def _assert_phones_follow_speech(events, speech_parts, silent_parts, duration):
    assert events, "no phones at all"
    assert all(e.phoneme in ARPABET for e in events)
    for before, after in zip(events, events[1:]):
        assert before.start < before.end <= after.start + 1e-9
    assert events[0].start >= 0 and events[-1].end <= duration + 1e-9
    for start, end in speech_parts:
        covered = sum(_overlap(e, start, end) for e in events)
        assert covered >= 0.5 * (end - start), (start, end, covered)
    for start, end in silent_parts:
        # the quiet stretch minus 60 ms at each side, where word edges fade out
        inner = (start + 0.06, end - 0.06)
        assert not [e for e in events if _overlap(e, *inner) > 0], (start, end)


def test_voice_activity_finds_words_and_pauses():
    result = speech.synthesize(
        '<speak>Good morning everyone. <break time="1s"/> Thank you for coming. '
        '<break time="800ms"/> Let us begin.</speak>'
    )
    regions = speech.voice_activity(result.samples, result.sample_rate)
    assert len(regions) == 3
    pauses = [p for p in result.phonemes if p.phoneme == speech.PAUSE and p.end - p.start > 0.5]
    assert len(pauses) == 2
    for (first, second), pause in zip(zip(regions, regions[1:]), pauses):
        assert first[1] <= pause.start + 0.1 and second[0] >= pause.end - 0.1
    words = result.words
    assert regions[0][0] <= words[0].start + 0.02 and regions[-1][1] >= words[-1].end - 0.05


def test_voice_activity_ignores_silence_and_steady_hiss():
    rate = 16000
    assert speech.voice_activity(np.zeros(rate * 3, np.float32), rate) == []
    hiss = 0.003 * np.random.default_rng(1).standard_normal(rate * 3).astype(np.float32)
    assert speech.voice_activity(hiss, rate) == []
    assert speech.recognize(np.zeros(rate * 2, np.float32)) == []


def test_recognize_real_speech_has_phones_exactly_where_speech_is():
    if not JFK.exists():
        pytest.skip("shared media not present")
    samples = speech.load_audio(JFK)
    began = time.perf_counter()
    events = speech.recognize(samples)
    assert time.perf_counter() - began < 5.0
    speech_parts, silent_parts = _loudness_stretches(samples, 16000)
    assert len(speech_parts) >= 5 and len(silent_parts) >= 2
    _assert_phones_follow_speech(events, speech_parts, silent_parts, len(samples) / 16000)
    # every VAD region got phones, and phones stay inside VAD regions
    regions = speech.voice_activity(samples, 16000)
    for start, end in regions:
        assert any(_overlap(e, start, end) > 0 for e in events)
    for event in events:
        assert any(start - 1e-6 <= event.start and event.end <= end + 1e-6 for start, end in regions)
    # "And so, my fellow Americans": the closure of the M in "my" and "Americans" is heard
    names = [e.phoneme for e in events]
    assert names.count("M") + names.count("B") + names.count("P") >= 3


def _espeak_16k(text: str, voice: str = "en-us") -> tuple[speech.Speech, np.ndarray]:
    result = speech.synthesize(text, voice=voice)
    return result, speech.resample(result.samples, result.sample_rate, 16000)


@pytest.mark.parametrize("voice", ["en-us", "fr", "de"])
def test_recognize_espeak_speech_has_phones_exactly_where_speech_is(voice):
    texts = {
        "en-us": '<speak>Bob met Pam by the maple bench. <break time="900ms"/> Then they went home.</speak>',
        "fr": '<speak>Bonjour à tous, merci d\'être venus. <break time="900ms"/> Nous commençons.</speak>',
        "de": '<speak>Guten Morgen, schön dass ihr da seid. <break time="900ms"/> Wir fangen an.</speak>',
    }
    result, samples = _espeak_16k(texts[voice], voice)
    events = speech.recognize(samples)
    speech_parts = [(w.start, w.end) for w in result.words if w.end - w.start > 0.1]
    silent_parts = [
        (p.start, p.end) for p in result.phonemes if p.phoneme == speech.PAUSE and p.end - p.start > 0.4
    ]
    assert silent_parts
    _assert_phones_follow_speech(events, speech_parts, silent_parts, len(samples) / 16000)


def test_recognition_is_deterministic():
    _, samples = _espeak_16k("Determinism matters for cached renders and for tests.")
    assert speech.recognize(samples) == speech.recognize(samples)


def _track_with_pauses() -> np.ndarray:
    pause = '<break time="700ms"/>'
    _, samples = _espeak_16k(
        f"<speak>Bob met Pam by the maple bench. {pause} Then they went home for a big bowl of soup. {pause} "
        f"My mum baked a pumpkin pie. {pause} Maybe by mistake, and everybody ate it anyway.</speak>"
    )
    return samples


def _count_children(monkeypatch) -> list[int]:
    started: list[int] = []
    real_child = recognition._ChildDecoder

    def counting_child(pcm, slices):
        started.append(len(slices))
        return real_child(pcm, slices)

    monkeypatch.setattr(recognition, "_ChildDecoder", counting_child)
    return started


def test_a_long_track_is_shared_with_a_child_process_and_gives_the_same_phones(monkeypatch):
    samples = _track_with_pauses()
    started = _count_children(monkeypatch)
    here = speech.recognize(samples, local_share=1.0)
    assert started == []
    shared = speech.recognize(samples)
    assert len(started) == 1 and started[0] >= 1
    assert speech.recognize(samples, local_share=0.0) == shared == here
    assert started[-1] > started[0]  # all of it went to the child


def test_a_failing_child_process_falls_back_to_decoding_here(monkeypatch):
    samples = _track_with_pauses()
    expected = speech.recognize(samples, local_share=1.0)
    started = _count_children(monkeypatch)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    assert speech.recognize(samples, local_share=0.0) == expected
    assert started


def test_stopping_recognition_ends_the_child_process(monkeypatch):
    samples = np.tile(_track_with_pauses(), 6)  # ~1 min of speech: seconds of work for the child
    children = []
    real_child = recognition._ChildDecoder

    def keep(pcm, slices):
        children.append(real_child(pcm, slices))
        return children[-1]

    monkeypatch.setattr(recognition, "_ChildDecoder", keep)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        speech.recognize(samples, local_share=0.0, stop=stop)
    assert time.monotonic() - started < 1.5
    assert children and children[0]._child.poll() is not None  # killed, not left running


def test_unrecognisable_sound_still_moves_the_mouth():
    # a hummed tone is "speech" to the VAD but holds no English phone: the fallback keeps
    # the region from freezing the mouth shut
    rate = 16000
    t = np.arange(rate) / rate
    hum = np.concatenate([np.zeros(rate // 2), 0.3 * np.sin(2 * np.pi * 150 * t), np.zeros(rate // 2)])
    events = speech.recognize(hum.astype(np.float32))
    assert events
    assert sum(e.end - e.start for e in events) > 0.5
