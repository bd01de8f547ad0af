"""engine.speech.scripts: every script read in its own language, as people type it.

espeak-ng's Japanese and Korean voices read a Han character as "Chinese letter" in English;
the phoneme timeline then shows a language switch, ``(en)`` … ``(ja)``, which is what these
tests look for, with the reading rate as a second, coarser check.
"""

from __future__ import annotations

import importlib.metadata

import pytest

from engine import speech
from engine.captions import build_cues
from engine.speech.scripts import language_switches, readable_for_voice
from engine.speech.ssml import prepare_for_espeak

# voice, a sentence as typed, the syllables (morae for Japanese) it has when read
SENTENCES = {
    "japanese": ("ja", "今日は天気が良いので、公園へ散歩に行きました。", 25),
    "mandarin": ("cmn", "今天天气很好，我们去公园散步吧。", 14),
    "mandarin-traditional": ("cmn", "今天天氣很好，我們去公園散步吧。", 14),
    "cantonese": ("yue", "今日天氣好好，我哋去公園散步啦。", 14),
    "korean": ("ko", "오늘은 날씨가 좋아서 公園에 산책하러 갔습니다.", 20),
    "korean-hanja": ("ko", "大韓民國의 憲法은 1948年에 制定되었다.", 20),
    "thai": ("th", "วันนี้อากาศดีมากเราไปเดินเล่นที่สวนสาธารณะกัน", 17),
    "khmer": ("km", "ថ្ងៃនេះអាកាសធាតុល្អណាស់", 8),
}
# espeak's normal rate is 3.5 (Mandarin, a pause after each syllable) to 8 (Japanese morae)
# a second; "Chinese letter" for one character takes the time of four syllables.
SYLLABLES_PER_SECOND = (3.0, 10.0)


def _voice_ids() -> set[str]:
    return {voice.id for voice in speech.list_voices()}


@pytest.mark.parametrize("name", SENTENCES)
def test_a_typed_sentence_is_read_in_the_voices_own_language(name):
    voice, text, syllables = SENTENCES[name]
    if voice not in _voice_ids():
        pytest.skip(f"espeak-ng here has no {voice} voice (so nothing reads {name} script)")
    spoken = speech.synthesize(text, voice=voice)
    assert language_switches(spoken.phonemes) == []
    assert SYLLABLES_PER_SECOND[0] < syllables / spoken.duration < SYLLABLES_PER_SECOND[1]


def test_the_detector_sees_what_espeak_does_with_a_kanji():
    # the Hakka voice still reads hanzi as English: a live example of the fallback
    spoken = speech.synthesize("今天天氣很好。", voice="hak")
    assert language_switches(spoken.phonemes)[:2] == ["en", "hak"]
    assert language_switches(["_", "(en)", "tS", "(ja)", "a"]) == ["en", "ja"]


@pytest.mark.parametrize(
    ("voice", "written", "phonetic"),
    [
        (
            "ja",
            "今日は天気が良いので、公園へ散歩に行きました。",
            "きょうはてんきがよいので、こうえんへさんぽにいきました。",
        ),
        (
            "ko",
            "오늘은 날씨가 좋아서 公園에 산책하러 갔습니다.",
            "오늘은 날씨가 좋아서 공원에 산책하러 갔습니다.",
        ),
    ],
)
def test_han_characters_sound_like_their_reading(voice, written, phonetic):
    with_han, spelt = speech.synthesize(written, voice=voice), speech.synthesize(phonetic, voice=voice)
    assert [p.phoneme for p in with_han.phonemes] == [p.phoneme for p in spelt.phonemes]
    # within a frame or so: after other voices have spoken, espeak can end a clause ~10 ms apart
    assert with_han.duration == pytest.approx(spelt.duration, abs=0.025)
    # the words are the script's own, for the captions
    assert all(word.text in written for word in with_han.words)
    assert any(word.text.startswith(("今日は", "公園")) for word in with_han.words)


def test_thai_needs_no_word_breaks():
    """espeak reads Thai by letter rules, with no dictionary: word breaks change no sound but
    a linking vowel, so the sentence as typed (no spaces) lasts as long as a segmented one."""
    typed = speech.synthesize("วันนี้อากาศดีมากเราไปเดินเล่นที่สวนสาธารณะกัน", voice="th")
    spaced = speech.synthesize("วันนี้ อากาศ ดีมาก เรา ไป เดินเล่น ที่ สวนสาธารณะ กัน", voice="th")
    assert typed.duration == pytest.approx(spaced.duration, rel=0.05)
    consonants = lambda s: [p.phoneme for p in s.phonemes if p.phoneme not in ("a", speech.PAUSE)]
    assert consonants(typed) == consonants(spaced)


# ----------------------------------------------------------------------------- conversion


def test_the_reading_libraries_are_installed():
    # without them scripts are read as written, kanji and hanja as "Chinese letter"
    assert importlib.metadata.version("pykakasi") == "2.3.0"
    assert importlib.metadata.version("hanja") == "0.15.1", "pip install --no-deps hanja==0.15.1"


def _read(text: str, voice: str) -> str:
    return readable_for_voice(text, voice)[0]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (
            "今日は天気が良いので、公園へ散歩に行きました。",
            "きょうはてんきがよいので、こうえんへさんぽにいきました。",
        ),
        (
            "こんにちは、私はあなたの新しいアバターです。",
            "こんにちは、わたしはあなたのあたらしいアバターです。",
        ),
        ("東京（とうきょう）に住む", "とうきょうにすむ"),  # the writer's reading, said once
        ("毎朝７時に起きる。３ヶ月、１０時間。", "まいあさ7じにおきる。3かげつ、10じかん。"),
        ("人々と佐々木さん", "ひとびととささきさん"),
        ("ABCとカタカナ、ｶﾀｶﾅ。", "ABCとカタカナ、ｶﾀｶﾅ。"),  # no kanji: untouched
    ],
)
def test_japanese_kanji_become_kana(written, read):
    assert _read(written, "ja") == read
    assert _read(written, "ja+f3") == read


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("大韓民國의 憲法은 1948年에 制定되었다.", "대한민국의 헌법은 1948년에 제정되었다."),
        ("來日 留學, 北韓과 美國", "내일 유학, 북한과 미국"),  # the initial-sound law
        ("不動産이 不足하다", "부동산이 부족하다"),
        ("사기(詐欺) 사건과 詐欺(사기) 사건", "사기 사건과 사기 사건"),  # a gloss is not read twice
    ],
)
def test_korean_hanja_become_hangul(written, read):
    assert _read(written, "ko") == read


def test_other_voices_keep_han_characters_and_get_ascii_digits():
    assert _read("我有３个苹果，今天很好。", "cmn") == "我有3个苹果，今天很好。"  # espeak drops "３"
    assert _read("Ｒｏｏｍ ４", "en-us") == "Room 4"
    text = "我们去公园散步吧。"
    assert readable_for_voice(text, "yue") == (text, [])


def test_ssml_text_is_converted_and_markup_is_not():
    script = (
        '<speak>今日は<break time="300ms"/><mark name="天気"/><emphasis>天気</emphasis>が良い。'
        '<phoneme alphabet="x-espeak" ph="t@m\'A:toU">東京</phoneme>です。</speak>'
    )
    prepared, _flags, substitutions = prepare_for_espeak(script)
    read, moved = readable_for_voice(prepared, "ja", markup=True, substitutions=substitutions)
    assert read == (
        '<speak>きょうは<break time="300ms"/><mark name="天気"/><emphasis>てんき</emphasis>がよい。'
        ' [[t@m\'A:toU]] <break time="0ms"/>です。</speak>'
    )
    assert [(read[s.start : s.end], s.text) for s in moved] == [
        ("きょうは", "今日は"),
        ("てんき", "天気"),
        ("がよい", "が良い"),
        (" [[t@m'A:toU]]", "東京"),
    ]
    spoken = speech.synthesize(script, voice="ja")
    assert language_switches(spoken.phonemes) == []
    assert [w.text for w in spoken.words] == ["今日は", "天気", "が良い", "東京", "です"]


def test_captions_of_a_kanji_script_follow_the_speech():
    script = "東京に住んでいる田中さんは、毎朝七時に起きます。今日は天気が良いので、公園へ散歩に行きました。"
    spoken = speech.synthesize(script, voice="ja")
    cues = build_cues(spoken.words, duration=spoken.duration, script=script, max_line_chars=24)
    assert "".join(cue.text.replace("\n", "") for cue in cues) == script
    assert len(cues) >= 2 and cues[-1].end <= spoken.duration
    # the cue that ends a sentence ends where espeak paused after it
    pauses = [p for p in spoken.phonemes if p.phoneme == speech.PAUSE and p.end - p.start > 0.15]
    first_sentence = next(cue for cue in cues if cue.text.endswith("起きます。"))
    assert any(abs(first_sentence.end - pause.start) < 0.5 for pause in pauses)
