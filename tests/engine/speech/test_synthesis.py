"""engine.speech.synthesis: real espeak-ng synthesis with exact timelines, no mocks."""

from __future__ import annotations

import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from engine import speech
from tests.engine.speech.helpers import SENTENCE, rejected

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def spoken() -> speech.Speech:
    return speech.synthesize(SENTENCE)


# ----------------------------------------------------------------------------- timelines


def test_phoneme_timeline_covers_the_audio(spoken):
    events = spoken.phonemes
    assert events[0].start == 0.0
    assert events[-1].end == pytest.approx(spoken.duration, abs=1e-9)
    for before, after in zip(events, events[1:]):
        assert before.end == pytest.approx(after.start, abs=1e-9)
        assert before.start < before.end
    spoken_phonemes = [p.phoneme for p in events if p.phoneme != speech.PAUSE]
    assert spoken_phonemes[:3] == ["b", "0", "b"]
    assert all("'" not in p and "," not in p for p in spoken_phonemes)
    # phonemes are where the sound is: voiced phonemes carry energy
    rate = spoken.sample_rate
    vowels = [p for p in events if p.phoneme in ("E", "a", "aI", "eI", "0")]
    for vowel in vowels:
        part = spoken.samples[int(vowel.start * rate) : int(vowel.end * rate)]
        assert np.sqrt(np.mean(part**2)) > 0.02, vowel


def test_word_events_fall_inside_the_audio_in_order(spoken):
    words = spoken.words
    assert [w.text for w in words] == SENTENCE.replace(",", "").rstrip(".").split()
    for word in words:
        assert 0.0 <= word.start < word.end <= spoken.duration
    for before, after in zip(words, words[1:]):
        assert before.end <= after.start + 1e-9


def test_phoneme_starts_are_sample_exact(spoken):
    rate = spoken.sample_rate
    for event in spoken.phonemes:
        assert event.start * rate == pytest.approx(round(event.start * rate), abs=1e-6)


def test_speed_changes_duration():
    fast = speech.synthesize(SENTENCE, speed=1.5).duration
    normal = speech.synthesize(SENTENCE, speed=1.0).duration
    slow = speech.synthesize(SENTENCE, speed=0.5).duration
    assert fast < normal * 0.8
    assert slow > normal * 1.5


def test_volume_is_louder_and_never_clips():
    quiet = speech.synthesize(SENTENCE, volume=0).samples
    loud = speech.synthesize(SENTENCE, volume=10).samples
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(loud) > 1.8 * rms(quiet)
    assert np.abs(loud).max() < 1.0
    assert speech.synthesize(SENTENCE, volume=5).samples.dtype == np.float32


def test_pitch_parameter_is_applied():
    low = speech.synthesize(SENTENCE, pitch=10).samples
    high = speech.synthesize(SENTENCE, pitch=90).samples
    crossings = lambda x: int(np.sum(np.abs(np.diff(np.sign(x))) > 0))  # noqa: E731
    assert crossings(high) > crossings(low)


def test_synthesis_is_thread_safe_and_repeatable():
    expected = speech.synthesize(SENTENCE)
    results: list[speech.Speech] = []

    def worker():
        results.append(speech.synthesize(SENTENCE))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    # espeak's pitch flutter carries its phase from call to call: timings agree to a few ms
    for result in results:
        assert result.duration == pytest.approx(expected.duration, abs=0.02)
        assert [p.phoneme for p in result.phonemes] == [p.phoneme for p in expected.phonemes]
        for mine, theirs in zip(result.phonemes, expected.phonemes):
            assert mine.start == pytest.approx(theirs.start, abs=0.02)


def test_thirty_second_script_is_fast():
    import time

    text = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 8)
    began = time.perf_counter()
    result = speech.synthesize(text)
    assert result.duration > 25
    assert time.perf_counter() - began < 2.0


def test_bad_voice_speed_volume_pitch_are_rejected():
    assert "voice" in str(rejected(speech.synthesize, SENTENCE, voice="xx-klingon", field="voice"))
    rejected(speech.synthesize, SENTENCE, voice="en-us+nosuchvariant", field="voice")
    for speed in (0.49, 1.51, float("nan"), "fast"):
        rejected(speech.synthesize, SENTENCE, speed=speed, field="speed")
    for volume in (-1, 11, 2.5):
        rejected(speech.synthesize, SENTENCE, volume=volume, field="volume")
    rejected(speech.synthesize, SENTENCE, pitch=101, field="pitch")
    speech.synthesize(SENTENCE, speed=0.5, volume=10, pitch=0)  # the edges are allowed


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_cli_speak_writes_wav(tmp_path):
    out = tmp_path / "out.wav"
    result = _cli("speak", "Hello from the command line.", "--voice", "en-us+f3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as wav:
        assert wav.getnframes() / wav.getframerate() > 1.0


def test_cli_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "out.wav"
    for args in (
        ["   "],
        ["Hello there", "--voice", "nope"],
        ["Hello there", "--speed", "2"],
        ["Hello there", "--volume", "11"],
    ):
        result = _cli("speak", *args, "-o", str(out))
        assert result.returncode == 2
        assert result.stderr.strip() and "Traceback" not in result.stderr
        assert not out.exists()
