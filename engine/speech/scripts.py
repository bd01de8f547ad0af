"""Writing systems a voice reads only in part, rewritten before espeak-ng speaks them.

espeak-ng reads Chinese characters only through its Mandarin and Cantonese dictionaries.
Its Japanese and Korean voices say "Chinese letter" in English for every kanji or hanja
(about 0.8 s each), and the phoneme timeline shows the language switch: ``(en)`` before the
English phonemes, ``(ja)`` or ``(ko)`` after them (``language_switches``). Scripts are typed
as people write them, so before synthesis:

- Japanese (``ja``): kanji become hiragana readings from pykakasi's dictionary (shipped in
  its wheel). A reading the writer put in brackets, 東京（とうきょう）, is read instead of
  both; after a number 時 is じ and ヶ月 かげつ; 今日は is きょうは, not the greeting.
- Korean (``ko``): hanja become hangul from the ``hanja`` package's table, with its
  initial-sound law (來日 → 내일); 不 is 부 before ㄷ and ㅈ. A word written twice,
  사기(詐欺) or 詐欺(사기), is read once.
- Every voice: full-width Latin letters and digits, as CJK input methods type them, become
  ASCII (espeak drops ３ without a sound and reads Ａ as a code point).

The rest needs nothing: Mandarin and Cantonese read simplified and traditional hanzi from
their own dictionaries; Thai is read by letter rules without a dictionary, never in English,
and word breaks (which Thai is typed without) only drop a linking vowel here and there;
espeak-ng has no Khmer voice.

- ``readable_for_voice(prepared, voice, *, markup, substitutions) -> (string, substitutions)``:
  the string espeak is given (``ssml.prepare_for_espeak``), rewritten for the voice. Only
  text is touched, never tags, attributes or ``[[phonemes]]``; each rewritten word becomes a
  ``Substitution``, so espeak's word events carry the script's own words for the captions.
- ``language_switches(phonemes) -> list[str]``: the languages espeak switched to mid-speech.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .ssml import Substitution

log = logging.getLogger(__name__)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_HAN_CHARACTER = re.compile(f"[{_HAN}々〆]")
_KANA = "ぁ-ゖァ-ヺー"
_HANGUL = "가-힣"
# Full-width digits and Latin letters (U+FF10…) as their ASCII selves.
_FULL_WIDTH = {
    code: code - 0xFEE0
    for code in itertools.chain(range(0xFF10, 0xFF1A), range(0xFF21, 0xFF3B), range(0xFF41, 0xFF5B))
}
_MARKUP = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<[^>]*>|\[\[.*?\]\]", re.DOTALL)
_LETTER = r"[^\W\d_]"


@dataclass(frozen=True)
class _Reader:
    """How a language's voice gets a readable spelling of a written word."""

    glosses: tuple[str, ...]  # a word written twice, base(reading): groups "base" and "reading"
    read_gloss: Callable[[str, str], bool]  # (base, reading): is it one word written twice?
    read_run: Callable[[str, str], str]  # (letters holding a Han character, character before)

    @functools.cached_property
    def pattern(self) -> re.Pattern:
        named = "|".join(
            f"(?P<gloss{k}>" + re.sub(r"\?P<(\w+)>", rf"?P<\g<1>{k}>", gloss) + ")"
            for k, gloss in enumerate(self.glosses)
        )
        anonymous = "|".join(re.sub(r"\?P<\w+>", "?:", gloss) for gloss in self.glosses)
        # a gloss, or a run of letters up to where a gloss starts
        return re.compile(f"{named}|(?:(?!{anonymous}){_LETTER})+")

    def spoken(self, match: re.Match, before: str) -> str:
        for k in range(len(self.glosses)):
            if match[f"gloss{k}"] and self.read_gloss(match[f"base{k}"], match[f"reading{k}"]):
                return match[f"reading{k}"]
        written = match.group()
        return self.read_run(written, before) if _HAN_CHARACTER.search(written) else written


# ----------------------------------------------------------------------------- Japanese


@functools.cache
def _library(name: str):
    """pykakasi or hanja, imported on first use; without it, scripts are read as written."""
    try:
        return importlib.import_module(name)
    except ImportError:
        log.warning("%s is not installed: Han characters stay as written (read as English)", name)
        return None


@functools.cache
def _kakasi():
    # pykakasi's dictionary (~140 MB in memory) loads with the first Japanese script
    return _library("pykakasi").kakasi() if _library("pykakasi") else None


def _kakasi_tokens(text: str) -> list[tuple[str, str]]:
    """(written, hiragana) tokens; pykakasi drops a character it can't read, so then one by one."""
    if _kakasi() is None:
        return [(text, text)]
    tokens = [(token["orig"], token["hira"]) for token in _kakasi().convert(text)]
    if "".join(written for written, _ in tokens) == text:
        return tokens
    if len(text) == 1:
        return [(text, text)]
    return [token for character in text for token in _kakasi_tokens(character)]


# Counters after a number that pykakasi reads as words (時に "ときに", ヶ月 "ゖがつ").
_NUMBER_COUNTER = re.compile(r"[ヶヵカケか](?P<ka>[月所国])|時間|時")
_COUNTER_READINGS = {"月": "かげつ", "所": "かしょ", "国": "かこく", "時間": "じかん", "時": "じ"}
_JAPANESE_WORDS = {"今日は": "きょうは"}  # pykakasi's greeting; in a sentence it is "today"


def _japanese_run(run: str, before: str) -> str:
    head = ""
    counter = _NUMBER_COUNTER.match(run) if before.isdigit() else None
    if counter:
        head, run = _COUNTER_READINGS[counter["ka"] or counter.group()], run[counter.end() :]
    spoken = [head]
    for written, hiragana in _kakasi_tokens(run):
        if written in _JAPANESE_WORDS:
            hiragana = _JAPANESE_WORDS[written]
        # small ke (3ヶ所) reads か; a token pykakasi has no reading for stays as written
        hiragana = hiragana.replace("ゖ", "か").replace("ゕ", "か")
        spoken.append(hiragana if hiragana and _HAN_CHARACTER.search(written) else written)
    return "".join(spoken)


# ----------------------------------------------------------------------------- Korean


def _initial(syllable: str) -> int:
    """A hangul syllable's initial consonant (0 ㄱ … 3 ㄷ … 12 ㅈ …), else -1."""
    return (ord(syllable) - 0xAC00) // 588 if syllable and "가" <= syllable <= "힣" else -1


def _korean_run(run: str, before: str) -> str:
    # the character before decides the initial-sound law: 1948年 is 년, 年 alone 연
    hanja = _library("hanja")
    spoken = hanja.translate((before or " ") + run, "substitution")[1:] if hanja else run
    if len(spoken) != len(run):  # the table maps each hanja to one syllable
        return run
    return "".join(
        "부" if written == "不" and _initial(spoken[k + 1 : k + 2]) in (3, 12) else said
        for k, (written, said) in enumerate(zip(run, spoken))
    )


_READERS = {
    "ja": _Reader(
        glosses=(f"(?P<base>[{_HAN}々]+)[(（](?P<reading>[{_KANA}]+)[)）]",),
        read_gloss=lambda base, reading: len(base) <= len(reading) <= 6 * len(base),
        read_run=_japanese_run,
    ),
    "ko": _Reader(
        # one syllable a hanja, and the hangul is what is said: 사기(詐欺) and 詐欺(사기)
        glosses=(
            f"(?P<reading>[{_HANGUL}]+)[(（](?P<base>[{_HAN}]+)[)）]",
            f"(?P<base>[{_HAN}]+)[(（](?P<reading>[{_HANGUL}]+)[)）]",
        ),
        read_gloss=lambda base, reading: len(base) <= len(reading),
        read_run=_korean_run,
    ),
}


def _pieces(text: str, reader: _Reader | None) -> list[tuple[str, str, bool]]:
    """(written, spoken, is a word) pieces of a stretch of text; the written ones make ``text``."""
    normal = text.translate(_FULL_WIDTH)  # one character for one: offsets hold
    if reader is None:
        return [(text, normal, False)]
    pieces: list[tuple[str, str, bool]] = []
    cursor = 0
    for match in reader.pattern.finditer(normal):
        if match.start() > cursor:
            pieces.append((text[cursor : match.start()], normal[cursor : match.start()], False))
        spoken = reader.spoken(match, normal[match.start() - 1] if match.start() else "")
        pieces.append((text[match.start() : match.end()], spoken, True))
        cursor = match.end()
    pieces.append((text[cursor:], normal[cursor:], False))
    return pieces


def _reader_for(voice: str) -> _Reader | None:
    return _READERS.get(voice.split("+")[0].split("-")[0].lower())


def readable_for_voice(
    prepared: str,
    voice: str,
    *,
    markup: bool = False,
    substitutions: Sequence[Substitution] = (),
) -> tuple[str, list[Substitution]]:
    """``prepared`` (plain text, or SSML when ``markup``) spelt so ``voice`` can read it all.

    Returns the new string and the substitutions for it: ``substitutions`` (offsets in
    ``prepared``) moved to the new offsets, plus one per rewritten word, which espeak's word
    events then report as the script wrote it.
    """
    reader = _reader_for(voice)
    if reader is None and not any(ord(char) in _FULL_WIDTH for char in prepared):
        return prepared, list(substitutions)
    pieces: list[tuple[str, str, bool]] = []
    cursor = 0
    for match in _MARKUP.finditer(prepared) if markup else ():
        pieces += _pieces(prepared[cursor : match.start()], reader)
        pieces.append((match.group(), match.group(), False))
        cursor = match.end()
    pieces += _pieces(prepared[cursor:], reader)

    out: list[str] = []
    added: list[Substitution] = []
    moves: list[tuple[int, int]] = [(0, 0)]  # (offset in prepared, shift from there on)
    old = new = 0
    for word, group in itertools.groupby(pieces, key=lambda piece: piece[2]):
        group = list(group)
        written = "".join(piece[0] for piece in group)
        spoken = "".join(piece[1] for piece in group)
        if word and spoken != written and spoken.strip():
            added.append(Substitution(new, new + len(spoken), written))
        old, new = old + len(written), new + len(spoken)
        if new - old != moves[-1][1]:
            moves.append((old, new - old))
        out.append(spoken)

    def moved(offset: int) -> int:
        return offset + next(shift for start, shift in reversed(moves) if start <= offset)

    kept = [Substitution(moved(s.start), moved(s.end), s.text) for s in substitutions]
    return "".join(out), sorted(kept + added, key=lambda s: s.start)


# ----------------------------------------------------------------------------- detection

_SWITCH = re.compile(r"\((?P<language>[a-z]{2,3}(?:-[a-z0-9]+)*)\)")


def language_switches(phonemes: Sequence) -> list[str]:
    """The languages espeak-ng switched to mid-speech, in order (``PhonemeEvent``s or labels).

    A Japanese voice reading a kanji gives ["en", "ja"]: "Chinese letter" in English, then
    back. A script the voice reads whole gives [] (Latin words in a CJK script switch too).
    """
    labels = (getattr(p, "phoneme", p) for p in phonemes)
    return [match["language"] for label in labels if (match := _SWITCH.fullmatch(label))]
