"""Transcript alignment and English transcription, on espeak "recordings" made here (another
voice variant and speed than the aligner's own rendering, with hiss, a hum and a telephone
band), and on the shared recorded sentence when it is present."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from engine import speech
from engine.devmedia import shared_media
from engine.speech.alignment import MISMATCH_SENTENCE, NO_SPEECH_SENTENCE, _spaced_transcript

from .helpers import rejected

pytestmark = pytest.mark.slow


def _recording(text: str, voice: str, *, speed: float = 1.15, lead: float = 0.6, band: bool = True) -> tuple[np.ndarray, list]:
    """espeak speech as a stand-in recording: silence around it, band-limited, hum and hiss."""
    spoken = speech.synthesize(_spaced_transcript(text, voice), voice=voice, speed=speed)
    rate = spoken.sample_rate
    pad = np.zeros(int(lead * rate), np.float32)
    audio = np.concatenate([pad, spoken.samples, pad[: len(pad) // 2]])
    if band:
        audio = sosfilt(butter(4, [200, 3400], btype="band", fs=rate, output="sos"), audio)
    t = np.arange(len(audio)) / rate
    audio = audio + 0.01 * np.sin(2 * np.pi * 50 * t) + np.random.default_rng(1).normal(0, 0.003, len(audio))
    words = [speech.WordEvent(w.start + lead, w.end + lead, w.text) for w in spoken.words]
    samples16k = speech.resample(audio.astype(np.float32), rate, 16000)
    return samples16k, words


def _share_within(aligned, reference, tolerance: float) -> float:
    """Reference words paired in order with aligned words of the same spelling (espeak runs a
    few unstressed words into one word event, so the lists need not be equally long)."""
    from engine.evaluation.alignment import start_errors

    errors = start_errors([{"word": w.text, "start": w.start} for w in reference], aligned)
    assert sum(e is not None for e in errors) >= 0.9 * len(reference)
    return np.mean([e is not None and abs(e) <= tolerance for e in errors])


@pytest.mark.parametrize(
    ("voice", "recorded_voice", "text"),
    [
        ("en-us", "en-us+f3", "Bob met Pam by the maple bench, and they talked about the weather for a while."),
        ("de", "de+f3", "Der Raum hinter diesem Portal wurde lange als Lager genutzt."),
        ("ja", "ja+f3", "今日は東京で新しい友達に会いました。"),
    ],
)
def test_it_times_the_words_of_a_matching_transcript(voice, recorded_voice, text):
    samples, reference = _recording(text, recorded_voice)
    result = speech.align_transcript(samples, 16000, text, voice=voice)
    assert result.matched, result.cost
    assert result.reason == ""
    assert _share_within(result.words, reference, 0.150) >= 0.8
    assert result.alphabet == ("arpabet" if voice.startswith("en") else "espeak")
    duration = len(samples) / 16000
    assert all(0.0 <= p.start < p.end <= duration + 1e-6 for p in result.phonemes)
    # the mouth rests in the leading silence
    assert not [p for p in result.phonemes if p.end <= 0.5 and p.phoneme != speech.PAUSE]


def test_the_aligned_phonemes_drive_a_mouth_trajectory():
    from engine.visemes.trajectory import trajectory_from_phonemes

    text = "Bob met Pam by the maple bench."
    samples, _ = _recording(text, "en-us+m3")
    result = speech.align_transcript(samples, 16000, text, voice="en-us")
    trajectory = trajectory_from_phonemes(result.phonemes, samples, 16000, 25.0,
                                          alphabet=result.alphabet, words=result.words)
    assert "PP" in trajectory.visemes  # b, m, p close the lips
    assert trajectory.jaw[:10].max() < 0.05  # silence before the first word


@pytest.mark.parametrize(
    ("transcript", "voice"),
    [
        ("Der Raum hinter diesem Portal wurde lange als Lager genutzt.", "de"),  # another language
        ("Seven green ships sailed quietly into the harbour at dawn.", "en-us"),  # another recording
    ],
)
def test_a_transcript_of_something_else_does_not_match(transcript, voice):
    samples, _ = _recording("Bob met Pam by the maple bench, and they talked about the weather.", "en-us+f3")
    result = speech.align_transcript(samples, 16000, transcript, voice=voice)
    assert not result.matched
    assert result.reason == MISMATCH_SENTENCE


def test_a_transcript_far_too_long_for_the_audio_is_refused():
    samples, _ = _recording("Bob met Pam.", "en-us", speed=1.0)
    long_text = "Bob met Pam by the maple bench, and they talked about the weather. " * 4
    error = rejected(speech.align_transcript, samples, 16000, long_text, voice="en-us", field="transcript")
    assert error.code == "transcript_too_long"


def test_a_silent_track_gives_no_alignment_and_says_why():
    silence = np.random.default_rng(2).normal(0, 1e-4, 32000).astype(np.float32)
    result = speech.align_transcript(silence, 16000, "Bob met Pam.", voice="en-us")
    assert not result.matched and result.words == [] and result.cost is None
    assert result.reason == NO_SPEECH_SENTENCE


def test_an_empty_transcript_is_refused():
    samples, _ = _recording("Bob met Pam.", "en-us")
    error = rejected(speech.align_transcript, samples, 16000, " ... ", voice="en-us", field="transcript")
    assert error.code == "transcript_empty"


def test_transcribe_finds_most_words_of_a_clear_english_sentence():
    text = "Please call Stella and ask her to bring these things with her from the store."
    samples, reference = _recording(text, "en-us", speed=0.9, band=False)
    first = speech.transcribe(samples, 16000)
    assert speech.transcribe(samples, 16000) == first  # deterministic
    heard = {w.text.lower() for w in first}
    expected = {w.text.lower().strip(".,") for w in reference}
    assert len(heard & expected) >= 0.6 * len(expected), heard
    assert all(0.0 <= w.start < w.end <= len(samples) / 16000 + 0.05 for w in first)


def test_it_aligns_the_recorded_english_sentence():
    meta_path = shared_media("speech_transcripts.json")
    if not meta_path.is_file() or not shared_media("speech_en.wav").is_file():
        pytest.skip("the shared media folder is not here")
    from engine.evaluation.alignment import start_errors

    entry = json.loads(meta_path.read_text("utf-8"))["speech_en.wav"]
    samples = speech.load_audio(shared_media("speech_en.wav"), sample_rate=16000)
    result = speech.align_transcript(samples, 16000, entry["transcript"], voice="en-us")
    errors = start_errors(entry["words"], result.words)
    assert result.matched
    assert np.mean([e is not None and abs(e) <= 0.100 for e in errors]) >= 0.85
