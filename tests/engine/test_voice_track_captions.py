"""A voice track's captions and mouth: from the creator's transcript when it matches, from the
words PocketSphinx hears in English without one, and a warning when the transcript is wrong.
The files are read back with real SRT and WebVTT parsers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import srt
import webvtt

from engine import pipeline, speech
from engine.pipeline import RenderRequest, prepare_avatar, render
from tests import mediagen

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."
GERMAN = "Guten Abend, liebe Freunde. Heute Abend möchte ich über die Arbeit sprechen."


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("voice-track-captions")


@pytest.fixture(scope="module")
def photo_avatar(root) -> pipeline.PreparedAvatar:
    source = mediagen.make_photo(root / "me.jpg", fmt="jpg")
    return prepare_avatar(kind="photo", source=source, workdir=root / "photo-avatar")


def _voice(root, name, text, voice):
    spoken = speech.synthesize(text, voice=voice, speed=0.9)
    path = root / f"{name}.wav"
    speech.write_wav(path, spoken.samples, spoken.sample_rate)
    return path, spoken.duration


def _render(root, avatar, name, audio, **options):
    return render(RenderRequest(avatar_kind="photo", avatar_media=avatar.media_path, output=root / f"{name}.mp4",
                                poster=root / f"{name}.jpg", audio=audio, **options))


def _cues(result, seconds):
    subtitles = list(srt.parse(result.srt_path.read_text("utf-8")))
    captions = webvtt.read_buffer(io.StringIO(result.vtt_path.read_text("utf-8")))
    assert [s.content for s in subtitles] == [c.text for c in captions]
    for cue in subtitles:
        assert 0 <= cue.start.total_seconds() < cue.end.total_seconds() <= seconds + 1e-3
    return " ".join(s.content.replace("\n", " ") for s in subtitles)


@pytest.mark.slow
def test_a_matching_transcript_drives_the_captions(root, photo_avatar):
    audio, seconds = _voice(root, "fox", SENTENCE, "en-us+f3")
    result = _render(root, photo_avatar, "fox", audio, transcript=SENTENCE, voice="en-us")
    assert result.captions_source == "transcript" and result.warnings == []
    assert _cues(result, seconds) == SENTENCE  # the creator's words, punctuation and all


@pytest.mark.slow
def test_a_transcript_for_another_recording_is_warned_about_and_the_audio_leads(root, photo_avatar):
    audio, seconds = _voice(root, "fox-again", SENTENCE, "en-us+f3")
    result = _render(root, photo_avatar, "wrong", audio, voice="en-us",
                     transcript="Ladies and gentlemen, welcome aboard flight two hundred to Lisbon this evening.")
    assert len(result.warnings) == 1 and "doesn't match" in result.warnings[0]
    assert result.captions_source == "machine"
    heard = _cues(result, seconds).lower()
    assert heard and "lisbon" not in heard and "flight" not in heard  # what was heard, not the wrong words


@pytest.mark.slow
def test_english_without_a_transcript_gets_machine_captions(root, photo_avatar):
    audio, seconds = _voice(root, "plain", SENTENCE, "en-us")
    result = _render(root, photo_avatar, "machine", audio, voice="en-us")
    assert result.captions_source == "machine"
    _cues(result, seconds)


@pytest.mark.slow
def test_other_languages_need_their_transcript_for_captions(root, photo_avatar):
    audio, seconds = _voice(root, "german", GERMAN, "de")
    without = _render(root, photo_avatar, "de-none", audio, voice="de")
    assert (without.srt_path, without.captions_source) == (None, None)
    with_words = _render(root, photo_avatar, "de-words", audio, voice="de", transcript=GERMAN)
    assert with_words.captions_source == "transcript"
    assert _cues(with_words, seconds) == GERMAN


def test_a_preview_leaves_the_transcript_for_the_full_render(root, photo_avatar):
    audio, _ = _voice(root, "preview", SENTENCE, "en-us")
    result = _render(root, photo_avatar, "preview", audio, voice="en-us", transcript=SENTENCE,
                     preview_seconds=pipeline.PREVIEW_SECONDS)
    assert result.duration == pytest.approx(3.0, abs=0.1)
    assert result.captions_source == "machine" and result.warnings == []
