"""Captions for speech: cues from word timings, written as SRT and WebVTT.

- ``build_cues(words, *, duration, script=None, max_line_chars=None, width=None, height=None)
  -> list[Cue]``: ``words`` are ``speech.WordEvent``s (``speech.synthesize``); with the
  ``script`` the cues show what the creator wrote (punctuation, SSML without its tags),
  timed by the words espeak spoke.
- ``line_length_for(width, height) -> int``: the longest line for a frame of that shape.
- ``to_srt(cues)``, ``to_webvtt(cues)``, ``write_captions(cues, srt=…, vtt=…)``.
- ``spoken_text(script)``, ``display_width(text)``.

The rules a cue keeps: at most two lines, each at most ``max_line_chars`` columns (a
full-width CJK character is two columns, so lengths never depend on the encoding); a word
is never split (a word longer than a line gets a line of its own); breaks fall at the end
of a sentence, then at a clause's punctuation or a pause, and only then between two words;
a cue is shown for ``MIN_CUE_SECONDS`` to ``MAX_CUE_SECONDS`` when the speech allows; cues
never overlap and lie within the audio. Chinese and Japanese, written without spaces,
break between characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from .speech.ssml import is_ssml
from .speech.synthesis import WordEvent

MIN_CUE_SECONDS = 0.8
MAX_CUE_SECONDS = 6.0
# A cue stays up this long after its last word, so the end of a line can be read …
LINGER_SECONDS = 0.4
# … and runs on to the next cue when the gap is shorter than this: a blink between two
# cues is harder to read than no gap at all.
CHAIN_GAP_SECONDS = 0.5
# A silence this long between two words is a break as good as a comma …
PAUSE_SECONDS = 0.25
# … and this long as good as a full stop.
LONG_PAUSE_SECONDS = 0.6

# 42 columns is the usual limit for a 16:9 frame, and scaling it by the frame's width in
# text heights gives the 32 columns 4:3 captions have always had. Narrower than 16 columns
# (portrait video) would break nearly every phrase, so that is the floor.
WIDESCREEN_LINE_CHARS = 42
WIDESCREEN_ASPECT = 16 / 9
MIN_LINE_CHARS = 16

_SENTENCE_END = set(".!?…。！？‼⁇⁈⁉؟।॥۔።፧")
_CLOSING = set("\"'”’»›)]}」』】〕〉》）］｝")
_OPENING_CATEGORIES = ("Ps", "Pi")
# Japanese never starts a line with a small kana, the long-vowel mark or an iteration mark.
_NO_LINE_START = set("ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿーｰ々〻ゝゞヽヾ")

# Break strengths, and what breaking a cue after each costs (see ``_segment``).
_WORD, _CLAUSE, _SENTENCE = 0, 1, 2
_CUE_BREAK_COST = {_SENTENCE: 0.0, _CLAUSE: 1.0, _WORD: 6.0}
_LINE_BREAK_COST = {_SENTENCE: 0.0, _CLAUSE: 0.5, _WORD: 1.0}
_COST_PER_CUE = 2.0  # fuller cues over many small ones
_SILENCE_COST = 8.0  # per second of a long pause inside a cue: its text would show too early
_SHORT_CUE_COST = 30.0  # a cue that can't be shown for MIN_CUE_SECONDS


@dataclass(frozen=True)
class Cue:
    start: float  # seconds, whole milliseconds
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class _Token:
    text: str
    glued: bool  # no space before it: a character of a script without spaces, or punctuation
    start: float = 0.0
    end: float = 0.0
    timed: bool = False


def line_length_for(width: int | None, height: int | None) -> int:
    """The longest caption line, in columns, for a frame of ``width`` × ``height``."""
    if not width or not height:
        return WIDESCREEN_LINE_CHARS
    scaled = round(WIDESCREEN_LINE_CHARS * (width / height) / WIDESCREEN_ASPECT)
    return max(MIN_LINE_CHARS, min(WIDESCREEN_LINE_CHARS, scaled))


def display_width(text: str) -> int:
    """Columns ``text`` takes: full-width characters two, combining marks none, others one."""
    total = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


_BLOCK_ELEMENTS = {"speak", "p", "s", "paragraph", "sentence", "break"}


def spoken_text(script: str) -> str:
    """What a viewer reads for a script: SSML without its tags, whitespace collapsed."""
    if not is_ssml(script):
        return " ".join(script.split())
    root = ElementTree.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", script))
    pieces: list[str] = []

    def walk(element: ElementTree.Element) -> None:
        # Paragraphs, sentences and breaks separate words; inline elements (emphasis,
        # prosody, say-as…) sit inside a word's text ("<emphasis>friend</emphasis>.").
        block = element.tag.rsplit("}", 1)[-1] in _BLOCK_ELEMENTS
        if block:
            pieces.append(" ")
        pieces.append(element.text or "")
        for child in element:
            walk(child)
            pieces.append(child.tail or "")
        if block:
            pieces.append(" ")

    walk(root)
    return " ".join("".join(pieces).split())


# Scripts written without spaces, where a line may break between any two characters: kana,
# CJK ideographs (and their extensions and compatibility forms), half-width katakana. Thai,
# Lao, Khmer and Myanmar also go without spaces, but a break between two of their characters
# can fall inside a syllable; finding their words takes a dictionary, so their phrases
# (which spaces do separate) are kept whole like words.
_UNSPACED = (
    (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F), (0x20000, 0x3FFFF),
)


def _unspaced(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in _UNSPACED)


def _clusters(chunk: str) -> list[str]:
    """Characters with the combining marks that follow them (never split an accent off)."""
    clusters: list[str] = []
    for char in chunk:
        if clusters and (unicodedata.category(char) in ("Mn", "Mc", "Me") or char in "\u200d\ufe0f"):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _tokens_of(text: str) -> list[_Token]:
    """Words between spaces; in scripts without spaces, each character is a token.

    Punctuation stays with the character it follows (or, opening, precedes), so a line
    never starts with "，" or "ー" nor ends with "「".
    """
    tokens: list[_Token] = []
    for chunk in text.split():
        pieces: list[str] = []
        opening = ""  # opening punctuation, waiting for the character it belongs to
        in_word = False  # the last piece is a word of a spaced script, still being read
        for cluster in _clusters(chunk):
            char = cluster[0]
            category = unicodedata.category(char)
            if in_word and not _unspaced(char):
                pieces[-1] += cluster  # "don't", "e.g.", "(x)" stay whole
            elif category in _OPENING_CATEGORIES:
                opening += cluster
            elif pieces and (category.startswith("P") or char in _NO_LINE_START):
                pieces[-1] += opening + cluster
                opening = ""
            else:
                pieces.append(opening + cluster)
                opening, in_word = "", not _unspaced(char)
        if opening:
            pieces.append(pieces.pop() + opening if pieces else opening)
        tokens.extend(_Token(piece, glued=index > 0) for index, piece in enumerate(pieces))
    return tokens


def _key(text: str) -> str:
    """What alignment compares: letters, digits and marks, case-folded."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    return "".join(char for char in normal if unicodedata.category(char)[0] in "LNM")


def _merged_repeats(words: Sequence[WordEvent]) -> list[WordEvent]:
    """espeak reports a clause it cannot split into words (its Japanese voice, for one) as
    the same text once per spoken piece: those pieces are one word. (Only for aligning to a
    script, whose text shows a word said twice anyway.)"""
    merged: list[WordEvent] = []
    for word in words:
        if merged and merged[-1].text == word.text and len(_key(word.text)) > 1:
            merged[-1] = WordEvent(merged[-1].start, max(merged[-1].end, word.end), word.text)
        else:
            merged.append(word)
    return merged


# Where the script and espeak's words differ, how far either may skip ahead to agree again,
# and how many letters must then agree.
_RESYNC_WINDOW = 48
_RESYNC_RUN = 3


def _resync(script: str, spoken: str, i: int, j: int) -> tuple[int, int] | None:
    """The smallest skip (in the script, in the speech) after which both agree again."""
    for total in range(1, _RESYNC_WINDOW + 1):
        for skip_script in range(total + 1):
            a, b = i + skip_script, j + total - skip_script
            run = min(_RESYNC_RUN, len(script) - a, len(spoken) - b)
            if run > 0 and script[a : a + run] == spoken[b : b + run]:
                return skip_script, total - skip_script
    return None


def _letter_pairs(script: str, spoken: str):
    """(i, j) of each script letter and the spoken letter it is, in order.

    A walk down both texts, linear where they agree; where they differ it skips ahead in
    either (or both) to the nearest place where they agree again, so a repeated phrase can
    never pull a letter to the wrong occurrence.
    """
    i = j = 0
    while i < len(script) and j < len(spoken):
        if script[i] == spoken[j]:
            yield i, j
            i, j = i + 1, j + 1
            continue
        skip = _resync(script, spoken, i, j)
        i, j = (i + 1, j + 1) if skip is None else (i + skip[0], j + skip[1])


def _time_tokens(tokens: list[_Token], words: Sequence[WordEvent]) -> None:
    """Give each written token the time of the spoken words its letters match.

    espeak's words are not the script's: it drops punctuation, splits "3.5" into three
    words, skips some Chinese characters and reports others as one long word. Matching
    letter by letter survives all of that; a word's time is shared among its letters, so
    the characters of a long word get their own share.
    """
    written: list[int] = []  # token index of each compared letter of the script
    for index, token in enumerate(tokens):
        written.extend([index] * len(_key(token.text)))
    spoken: list[tuple[float, float]] = []  # the time of each compared letter espeak spoke
    for word in words:
        letters = len(_key(word.text))
        step = (word.end - word.start) / letters if letters else 0.0
        spoken.extend((word.start + k * step, word.start + (k + 1) * step) for k in range(letters))
    script_key = "".join(_key(token.text) for token in tokens)
    spoken_key = "".join(_key(word.text) for word in words)
    for a, b in _letter_pairs(script_key, spoken_key):
        token = tokens[written[a]]
        start, end = spoken[b]
        if not token.timed:
            token.start, token.end, token.timed = start, end, True
        else:
            token.start, token.end = min(token.start, start), max(token.end, end)
    _place_untimed(tokens)


def _place_untimed(tokens: list[_Token]) -> None:
    """Tokens nothing matched (a "&", a character espeak skipped) share the silence between
    their timed neighbours; times are made to run forwards."""
    first = next((t.start for t in tokens if t.timed), 0.0)
    previous_end = first
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.timed:
            token.start = max(token.start, previous_end)
            token.end = max(token.end, token.start)
            previous_end = token.end
            index += 1
            continue
        run_end = index
        while run_end < len(tokens) and not tokens[run_end].timed:
            run_end += 1
        until = max(previous_end, tokens[run_end].start) if run_end < len(tokens) else previous_end
        step = (until - previous_end) / (run_end - index)
        for k, untimed in enumerate(tokens[index:run_end]):
            untimed.start, untimed.end = previous_end + k * step, previous_end + (k + 1) * step
        previous_end = until
        index = run_end


def _strength_after(tokens: list[_Token], index: int) -> int:
    token = tokens[index]
    stripped = token.text.rstrip("".join(_CLOSING))
    if stripped and stripped[-1] in _SENTENCE_END:
        strength = _SENTENCE
    elif stripped and unicodedata.category(stripped[-1]).startswith("P"):
        strength = _CLAUSE
    else:
        strength = _WORD
    if index + 1 < len(tokens):
        gap = tokens[index + 1].start - token.end
        if gap >= LONG_PAUSE_SECONDS:
            strength = _SENTENCE
        elif gap >= PAUSE_SECONDS:
            strength = max(strength, _CLAUSE)
    return strength


class _Widths:
    """Widths of token runs as one line, in O(1) from prefix sums."""

    def __init__(self, tokens: list[_Token]):
        self.prefix = [0]
        self.spaces = [0 if t.glued else 1 for t in tokens]
        for token, space in zip(tokens, self.spaces):
            self.prefix.append(self.prefix[-1] + display_width(token.text) + space)

    def of(self, i: int, j: int) -> int:
        """Columns of tokens[i:j] on one line (no space before the first)."""
        return self.prefix[j] - self.prefix[i] - self.spaces[i]


def _fits(widths: _Widths, greedy_end: list[int], i: int, j: int, limit: int) -> bool:
    """Whether tokens[i:j] fit in two lines: the fullest first line leaves the shortest second."""
    if j - i == 1 or widths.of(i, j) <= limit:
        return True
    k = greedy_end[i]
    return i < k < j and widths.of(k, j) <= limit


def _segment(
    tokens: list[_Token], strengths: list[int], widths: _Widths, duration: float, limit: int
) -> list[tuple[int, int]]:
    """The cheapest cutting of the tokens into cues (dynamic programming over break points)."""
    n = len(tokens)
    greedy_end, k = [], 0
    for i in range(n):
        k = max(k, i + 1)
        while k < n and widths.of(i, k + 1) <= limit:
            k += 1
        greedy_end.append(k)
    best = [0.0] + [float("inf")] * n
    choice = [0] * (n + 1)
    for j in range(1, n + 1):
        cost_here = _COST_PER_CUE + (0.0 if j == n else _CUE_BREAK_COST[strengths[j - 1]])
        next_start = tokens[j].start if j < n else duration
        silence = 0.0
        for i in range(j - 1, -1, -1):
            if not _fits(widths, greedy_end, i, j, limit):
                break
            if j - i > 1 and tokens[j - 1].end - tokens[i].start > MAX_CUE_SECONDS:
                break
            if i < j - 1:
                silence += max(0.0, tokens[i + 1].start - tokens[i].end - LONG_PAUSE_SECONDS)
            cost = best[i] + cost_here + _SILENCE_COST * silence
            # A cue may start early, in the silence before its words (see _timed_cues).
            if next_start - (tokens[i - 1].end if i else 0.0) < MIN_CUE_SECONDS:
                cost += _SHORT_CUE_COST
            if cost < best[j]:
                best[j], choice[j] = cost, i
    cues, j = [], n
    while j > 0:
        cues.append((choice[j], j))
        j = choice[j]
    return cues[::-1]


def _join(tokens: Sequence[_Token]) -> str:
    return "".join(("" if t.glued or k == 0 else " ") + t.text for k, t in enumerate(tokens))


def _lines(
    tokens: list[_Token], strengths: list[int], widths: _Widths, i: int, j: int, limit: int
) -> tuple[str, ...]:
    """One line when it fits; else the break that is strongest and best balanced."""
    if widths.of(i, j) <= limit or j - i == 1:
        return (_join(tokens[i:j]),)
    best_cost, best_k = float("inf"), i + 1
    for k in range(i + 1, j):
        first, second = widths.of(i, k), widths.of(k, j)
        if first > limit or second > limit:
            continue
        cost = 3 * _LINE_BREAK_COST[strengths[k - 1]] + abs(first - second) / limit
        if cost < best_cost:
            best_cost, best_k = cost, k
    return (_join(tokens[i:best_k]), _join(tokens[best_k:j]))


def _timed_cues(spans: list[tuple[float, float, tuple[str, ...]]], duration: float) -> list[Cue]:
    """Display times from speech times: linger, chain short gaps, stretch short cues."""
    times: list[list[float]] = []
    for index, (start, speech_end, _) in enumerate(spans):
        limit = min(spans[index + 1][0] if index + 1 < len(spans) else duration, duration)
        end = max(speech_end + LINGER_SECONDS, start + MIN_CUE_SECONDS)
        end = min(end, limit, start + MAX_CUE_SECONDS)
        if limit - end < CHAIN_GAP_SECONDS:
            end = min(limit, start + MAX_CUE_SECONDS)
        times.append([start, end])
    for index, pair in enumerate(times):
        if pair[1] - pair[0] >= MIN_CUE_SECONDS:
            continue
        # No room after it: start earlier, into what the previous cue shows past its words.
        floor = 0.0
        if index > 0:
            previous = times[index - 1]
            floor = min(pair[0], max(spans[index - 1][1], previous[0] + MIN_CUE_SECONDS))
        pair[0] = max(floor, min(pair[0], pair[1] - MIN_CUE_SECONDS))
        if index > 0:
            times[index - 1][1] = min(times[index - 1][1], pair[0])
    # Whole milliseconds, as both formats write them; rounding keeps every order.
    limit_ms = int(duration * 1000)
    slots: list[list[int]] = []
    previous_ms = 0
    for start, end in times:
        start_ms = max(previous_ms, min(round(start * 1000), limit_ms))
        slots.append([start_ms, max(start_ms, min(round(end * 1000), limit_ms))])
        previous_ms = slots[-1][1]
    _share_time(slots, limit_ms)
    return [Cue(a / 1000, b / 1000, lines) for (a, b), (_, _, lines) in zip(slots, spans) if b > a]


def _share_time(slots: list[list[int]], limit_ms: int) -> None:
    """Give a cue left with no time (words espeak never spoke, squeezed between cues that
    fill the time around them) the silence beside it, or half a neighbour's time."""
    for k, slot in enumerate(slots):
        if slot[1] > slot[0]:
            continue
        before = slots[k - 1] if k else None
        after = slots[k + 1] if k + 1 < len(slots) else None
        if (before[1] if before else 0) < slot[0]:
            slot[0] = max(before[1] if before else 0, slot[0] - round(MIN_CUE_SECONDS * 1000))
        elif (after[0] if after else limit_ms) > slot[1]:
            slot[1] = min(after[0] if after else limit_ms, slot[1] + round(MIN_CUE_SECONDS * 1000))
        elif before and before[1] - before[0] > 1:
            before[1] = slot[0] = (before[0] + before[1]) // 2
        elif after and after[1] - after[0] > 1:
            after[0] = slot[1] = (after[0] + after[1]) // 2


def build_cues(
    words: Sequence[WordEvent],
    *,
    duration: float,
    script: str | None = None,
    max_line_chars: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> list[Cue]:
    """Caption cues for speech lasting ``duration`` seconds whose words were ``words``.

    With ``script`` (plain or SSML) the cues show the script's own text; without it, the
    words' text. ``max_line_chars`` defaults to ``line_length_for(width, height)``.
    """
    limit = max_line_chars or line_length_for(width, height)
    words = sorted((w for w in words if w.text.strip()), key=lambda w: w.start)
    if not words or duration <= 0:
        return []
    if script is not None:
        tokens = _tokens_of(spoken_text(script))
        _time_tokens(tokens, _merged_repeats(words))
    else:
        tokens = [_Token(w.text.strip(), glued=False, start=w.start, end=w.end, timed=True) for w in words]
    if not tokens:
        return []
    for token in tokens:
        token.start, token.end = min(max(token.start, 0.0), duration), min(max(token.end, 0.0), duration)
    strengths = [_strength_after(tokens, k) for k in range(len(tokens))]
    widths = _Widths(tokens)
    spans = [
        (tokens[i].start, tokens[j - 1].end, _lines(tokens, strengths, widths, i, j, limit))
        for i, j in _segment(tokens, strengths, widths, duration, limit)
    ]
    return _timed_cues(spans, duration)


# -------------------------------------------------------------------------------- writers


def _timestamp(seconds: float, separator: str) -> str:
    total = round(seconds * 1000)
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm``, a blank line after each."""
    blocks = [
        f"{number}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n{cue.text}\n"
        for number, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # "<" would open a tag and "-->" end the timing line; WebVTT's own escapes show them.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues timed ``HH:MM:SS.mmm``."""
    blocks = ["WEBVTT\n"] + [
        f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n{_vtt_escape(cue.text)}\n"
        for cue in cues
    ]
    return "\n".join(blocks)


def write_captions(cues: Sequence[Cue], *, srt: Path, vtt: Path) -> None:
    """Both files, UTF-8 (WebVTT allows nothing else; SRT players read it everywhere)."""
    Path(srt).write_text(to_srt(cues), encoding="utf-8")
    Path(vtt).write_text(to_webvtt(cues), encoding="utf-8")


__all__ = [
    "MAX_CUE_SECONDS",
    "MIN_CUE_SECONDS",
    "Cue",
    "build_cues",
    "display_width",
    "line_length_for",
    "spoken_text",
    "to_srt",
    "to_webvtt",
    "write_captions",
]
