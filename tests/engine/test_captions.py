"""Captions from word timings: the cue rules, checked on files read back by real SRT and WebVTT parsers."""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
import srt
import webvtt

from engine import captions, media, pipeline, speech
from engine.captions import Cue, build_cues, display_width, line_length_for
from engine.speech import WordEvent
from tests import mediagen

ENGLISH = (
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, "
    "conceived in Liberty, and dedicated to the proposition that all men are created equal. Now we "
    "are engaged in a great civil war, testing whether that nation, or any nation so conceived and so "
    "dedicated, can long endure. We are met on a great battle-field of that war."
)
CHINESE = "你好，我是你的新虚拟形象。很高兴认识你。今天我们一起学习怎样制作视频，这个过程非常简单。"
RUSSIAN = "Здравствуйте, я ваш новый аватар. Рад знакомству. Сегодня мы вместе сделаем короткое видео."
SSML = (
    '<speak>Hello <break time="500ms"/> there, <emphasis>friend</emphasis>. '
    '<p>Salt <prosody rate="slow">&amp; pepper</prosody> are on the table.</p>'
    '<s>Say <phoneme alphabet="x-espeak" ph="t@m\'A:toU">tomato</phoneme> twice.</s></speak>'
)


@dataclass
class Parsed:
    start: float
    end: float
    lines: list[str]


def written(cues: list[Cue], folder: Path) -> tuple[list[Parsed], list[Parsed]]:
    """Write both files and read them back with the parsers players' tooling uses."""
    srt_path, vtt_path = folder / "captions.srt", folder / "captions.vtt"
    captions.write_captions(cues, srt=srt_path, vtt=vtt_path)
    from_srt = [
        Parsed(s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n"))
        for s in srt.parse(srt_path.read_text("utf-8"))
    ]
    from_vtt = [
        Parsed(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
               [html.unescape(line) for line in c.lines])
        for c in webvtt.read(str(vtt_path)).captions
    ]
    assert from_srt == from_vtt
    return from_srt, from_vtt


def assert_cue_rules(parsed: list[Parsed], *, duration: float, limit: int) -> None:
    assert parsed
    for cue in parsed:
        assert 0.0 <= cue.start < cue.end <= duration + 1e-9
        assert cue.end - cue.start <= captions.MAX_CUE_SECONDS + 1e-9
        assert 1 <= len(cue.lines) <= 2
        assert all(line and display_width(line) <= limit for line in cue.lines), cue.lines
    for earlier, later in itertools.pairwise(parsed):
        assert earlier.end <= later.start  # never two cues on screen at once


def spoken_cues(script: str, voice: str, tmp_path: Path, **options) -> tuple[list[Parsed], float]:
    spoken = speech.synthesize(script, voice=voice)
    cues = build_cues(spoken.words, duration=spoken.duration, script=script, **options)
    parsed, _ = written(cues, tmp_path)
    return parsed, spoken.duration


# -- line length ---------------------------------------------------------------------------


def test_it_sizes_lines_by_the_frames_shape():
    assert line_length_for(1280, 720) == 42  # 16:9
    assert line_length_for(1920, 1080) == 42  # the same shape, the same text on screen
    assert line_length_for(640, 480) == 32  # 4:3, as broadcast captions always were
    assert line_length_for(1080, 1080) == 24
    assert line_length_for(720, 1280) == captions.MIN_LINE_CHARS  # portrait
    assert line_length_for(2560, 1080) == 42  # wider than 16:9 reads no longer lines
    assert line_length_for(None, None) == 42


def test_it_counts_columns_not_bytes():
    assert display_width("аватар") == 6  # 12 bytes of UTF-8
    assert display_width("你好") == 4  # full-width: two columns each
    assert display_width("e\u0301") == 1  # a combining accent takes no column of its own


# -- real speech -----------------------------------------------------------------------------


def test_english_script_keeps_every_rule(tmp_path):
    parsed, duration = spoken_cues(ENGLISH, "en-us", tmp_path, width=1280, height=720)
    assert_cue_rules(parsed, duration=duration, limit=42)
    assert len(parsed) >= 4
    # The script's own words, punctuation included, in order, none split across lines.
    assert " ".join(line for cue in parsed for line in cue.lines) == ENGLISH
    assert all(round(cue.end - cue.start, 3) >= captions.MIN_CUE_SECONDS for cue in parsed)
    # Breaks fall at punctuation whenever the lines allow it.
    endings = [cue.lines[-1][-1] for cue in parsed]
    assert sum(ending in ",.;" for ending in endings) >= len(endings) - 1


def test_captions_follow_the_speech(tmp_path):
    spoken = speech.synthesize(ENGLISH, voice="en-us")
    cues = build_cues(spoken.words, duration=spoken.duration, script=ENGLISH)
    word_times = {w.text: w for w in spoken.words}
    for cue in cues:
        first_word = cue.lines[0].split()[0].strip(",.")
        if first_word in word_times:  # a cue appears by the time its first word is spoken
            assert cue.start <= word_times[first_word].start + 0.05


def test_a_portrait_frame_gets_short_lines(tmp_path):
    parsed, duration = spoken_cues(ENGLISH, "en-us", tmp_path, width=720, height=1280)
    assert_cue_rules(parsed, duration=duration, limit=captions.MIN_LINE_CHARS)
    assert " ".join(line for cue in parsed for line in cue.lines) == ENGLISH


def test_a_chinese_script_breaks_between_characters(tmp_path):
    parsed, duration = spoken_cues(CHINESE, "cmn", tmp_path, max_line_chars=16)
    assert_cue_rules(parsed, duration=duration, limit=16)
    assert len(parsed) >= 2
    # nothing dropped, no spaces added
    assert "".join(line for cue in parsed for line in cue.lines) == CHINESE
    assert not any(line[0] in "，。" for cue in parsed for line in cue.lines)  # punctuation stays at the end


def test_a_japanese_script_keeps_its_marks_with_their_characters(tmp_path):
    script = "こんにちは、私はあなたの新しいアバターです。"
    # espeak's Japanese voice reports the second clause once per spoken piece: one word, once.
    parsed, duration = spoken_cues(script, "ja", tmp_path, max_line_chars=12)
    assert_cue_rules(parsed, duration=duration, limit=12)
    assert "".join(line for cue in parsed for line in cue.lines) == script
    assert not any(line[0] in "、。ー" for cue in parsed for line in cue.lines)
    assert parsed[-1].end > duration - 1.0  # the last words are captioned while they are spoken


def test_a_cyrillic_script_is_measured_in_characters(tmp_path):
    parsed, duration = spoken_cues(RUSSIAN, "ru", tmp_path, width=1280, height=720)
    assert_cue_rules(parsed, duration=duration, limit=42)
    assert any(len(line.encode()) > 42 for cue in parsed for line in cue.lines)  # bytes would have broken it
    assert " ".join(line for cue in parsed for line in cue.lines) == RUSSIAN


def test_an_ssml_script_shows_its_spoken_text(tmp_path):
    parsed, duration = spoken_cues(SSML, "en-us", tmp_path)
    assert_cue_rules(parsed, duration=duration, limit=42)
    text = " ".join(line for cue in parsed for line in cue.lines)
    assert text == "Hello there, friend. Salt & pepper are on the table. Say tomato twice."


def test_spoken_text_drops_tags_and_separates_sentences():
    ssml = "<speak><s>One.</s><s>Two</s><break/>three <emphasis>f</emphasis>our</speak>"
    assert captions.spoken_text(ssml) == "One. Two three four"
    assert captions.spoken_text("  plain\n text  ") == "plain text"


# -- the rules, on made-up timings ---------------------------------------------------------


def evenly(text: str, *, seconds_per_word: float = 0.3, start: float = 0.0) -> list[WordEvent]:
    words = []
    for index, word in enumerate(text.split()):
        begin = start + index * seconds_per_word
        words.append(WordEvent(begin, begin + seconds_per_word * 0.9, word.strip(",.")))
    return words


def test_a_pause_is_a_break(tmp_path):
    words = evenly("one two three four five six") + evenly("seven eight nine", start=2.6)
    cues = build_cues(words, duration=3.6, max_line_chars=20)
    assert [cue.text for cue in cues] == ["one two three\nfour five six", "seven eight nine"]


def test_a_long_stretch_of_speech_is_cut_every_six_seconds_at_most(tmp_path):
    text = " ".join(["go"] * 40)  # 12 s of short words: every cue is full before its time is
    cues = build_cues(evenly(text), duration=12.0, max_line_chars=200)
    parsed, _ = written(cues, tmp_path)
    assert_cue_rules(parsed, duration=12.0, limit=200)
    assert sum(len(cue.text.split()) for cue in cues) == 40


def test_short_cues_are_held_for_long_enough_and_wait_for_their_words(tmp_path):
    words = [WordEvent(0.0, 0.2, "Yes."), WordEvent(0.25, 0.5, "No."), WordEvent(3.0, 3.2, "Maybe.")]
    cues = build_cues(words, duration=3.25)
    parsed, _ = written(cues, tmp_path)
    assert_cue_rules(parsed, duration=3.25, limit=42)
    # "Maybe." would fit beside the others, but not 2.5 s before it is said.
    assert [cue.text for cue in cues] == ["Yes. No.", "Maybe."]
    assert all(round(cue.end - cue.start, 3) >= captions.MIN_CUE_SECONDS for cue in cues)
    assert cues[-1].end == 3.25  # held to the end of the audio, never past it


def test_speech_shorter_than_the_minimum_is_one_cue_over_all_of_it():
    cues = build_cues([WordEvent(0.05, 0.4, "Hi")], duration=0.5)
    assert cues == [Cue(0.0, 0.5, ("Hi",))]


def test_a_word_longer_than_a_line_is_never_split():
    words = evenly("a Donaudampfschifffahrtsgesellschaft b")
    cues = build_cues(words, duration=1.0, max_line_chars=10)
    lines = [line for cue in cues for line in cue.lines]
    assert "Donaudampfschifffahrtsgesellschaft" in lines
    assert " ".join(lines) == "a Donaudampfschifffahrtsgesellschaft b"


def test_no_words_no_cues():
    assert build_cues([], duration=2.0) == []


def test_the_writers_formats():
    cues = [Cue(0.0, 1.5, ("a <b> & c",)), Cue(3661.25, 3662.0, ("one", "two"))]
    assert captions.to_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,500\na <b> & c\n\n2\n01:01:01,250 --> 01:01:02,000\none\ntwo\n"
    )
    assert captions.to_webvtt(cues) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\na &lt;b&gt; &amp; c\n\n"
        "01:01:01.250 --> 01:01:02.000\none\ntwo\n"
    )


# -- the pipeline ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_avatar(tmp_path_factory) -> pipeline.PreparedAvatar:
    root = tmp_path_factory.mktemp("captions")
    source = mediagen.make_photo(root / "me.jpg", fmt="jpg")
    return pipeline.prepare_avatar(kind="photo", source=source, workdir=root / "avatar")


def photo_request(photo_avatar, folder: Path, **options) -> pipeline.RenderRequest:
    return pipeline.RenderRequest(
        avatar_kind="photo", avatar_media=photo_avatar.media_path, output=folder / "talk.mp4",
        poster=folder / "talk.jpg", **options,
    )


def test_a_script_render_writes_captions_beside_the_video(tmp_path, photo_avatar):
    script = "Hello there. These captions sit beside the video."
    result = pipeline.render(photo_request(photo_avatar, tmp_path, text=script))
    assert (result.srt_path, result.vtt_path) == (tmp_path / "talk.srt", tmp_path / "talk.vtt")
    cues = list(srt.parse(result.srt_path.read_text("utf-8")))
    assert " ".join(cue.content.replace("\n", " ") for cue in cues) == script
    # within the audio: the video lasts as long as the speech, to a frame
    assert cues[-1].end.total_seconds() <= media.probe_in_process(result.video_path).duration + 1 / 25
    assert webvtt.read(str(result.vtt_path)).captions[-1].text == cues[-1].content


def test_a_voice_track_in_another_language_without_its_transcript_has_no_captions(tmp_path, photo_avatar):
    # English is transcribed by machine; other languages need the creator's words
    # (tests/engine/test_voice_track_captions.py).
    audio = mediagen.make_audio(tmp_path / "voice.wav", seconds=1.5)
    result = pipeline.render(photo_request(photo_avatar, tmp_path, audio=audio, voice="de"))
    assert (result.srt_path, result.vtt_path) == (None, None)
    assert not list(tmp_path.glob("talk.*t"))


def test_captions_can_be_left_out(tmp_path, photo_avatar):
    request = photo_request(photo_avatar, tmp_path, text="No captions, please.", captions=False)
    result = pipeline.render(request)
    assert result.srt_path is None and not (tmp_path / "talk.srt").exists()
