"""Scripts and SSML: the script rules, and the string espeak-ng is given for a script.

- ``validate_script(text) -> str``: 4–2,000 characters a reader sees (SSML counted by its
  text content), well-formed SSML with errors located by line and column.
- ``prepare_for_espeak(text) -> (string, flags, substitutions)``: espeak-ng ignores
  ``<phoneme>``, so phonemes in espeak's own alphabet become its ``[[...]]`` input and
  other alphabets fall back to the written words; ``substitutions`` say where the string
  differs from the script, for the captions.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from xml.parsers import expat

from ..errors import InputRejected
from .espeak import PHONEMES, SSML

SCRIPT_MIN_CHARS = 4
SCRIPT_MAX_CHARS = 2000


_SSML_START = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?<speak[\s>/]", re.IGNORECASE)


def is_ssml(text: str) -> bool:
    return bool(_SSML_START.match(text))


def _ssml_error(error: expat.ExpatError) -> InputRejected:
    reason = expat.ErrorString(error.code)
    return InputRejected(
        f"The script's SSML is not valid at line {error.lineno}, column {error.offset + 1}: {reason}.",
        field="script",
        code="ssml_invalid",
    )


def _parse_ssml(text: str) -> ElementTree.Element:
    # expat reports the position of the first error, which is what a creator needs.
    parser = expat.ParserCreate()
    try:
        parser.Parse(text, True)
    except expat.ExpatError as error:
        raise _ssml_error(error) from None
    root = ElementTree.fromstring(text)
    if root.tag.rsplit("}", 1)[-1] != "speak":
        raise InputRejected(
            "The script's SSML must be wrapped in a single <speak> element.",
            field="script",
            code="ssml_invalid",
        )
    return root


def _visible_length(text: str) -> int:
    """Characters a reader sees: whitespace runs count once, control characters not at all."""
    collapsed = re.sub(r"\s+", " ", text).strip()
    return sum(1 for char in collapsed if unicodedata.category(char) not in ("Cc", "Cf"))


def validate_script(text: str) -> str:
    """Check the script rules and return it stripped; SSML is counted by its text content."""
    if text is None or not str(text).strip():
        raise InputRejected(
            "The script is empty; type what the avatar should say.",
            field="script",
            code="script_empty",
        )
    cleaned = str(text).strip()
    spoken = "".join(_parse_ssml(cleaned).itertext()) if is_ssml(cleaned) else cleaned
    length = _visible_length(spoken)
    if length == 0:
        raise InputRejected(
            "The script's SSML has no text to speak; put the words inside <speak>.",
            field="script",
            code="script_empty",
        )
    if length < SCRIPT_MIN_CHARS:
        raise InputRejected(
            f"The script is {length} character{'s' if length != 1 else ''} long; "
            f"it needs at least {SCRIPT_MIN_CHARS}.",
            field="script",
            code="script_too_short",
        )
    if length > SCRIPT_MAX_CHARS:
        raise InputRejected(
            f"The script is {length:,} characters long; keep it to {SCRIPT_MAX_CHARS:,} or fewer.",
            field="script",
            code="script_too_long",
        )
    return cleaned


_PHONEME_ELEMENT = re.compile(r"<phoneme\b([^>]*)>(.*?)</phoneme\s*>", re.DOTALL | re.IGNORECASE)
_ESPEAK_ALPHABETS = {"x-espeak", "espeak", "x-kirshenbaum", "kirshenbaum"}


def _espeak_phonemes(attributes: str) -> str | None:
    """The ``ph`` of a <phoneme> element when it is in espeak's own alphabet, else None."""
    element = ElementTree.fromstring(f"<phoneme{attributes}/>")
    alphabet = (element.get("alphabet") or "").lower()
    phonemes = (element.get("ph") or "").strip()
    if alphabet in _ESPEAK_ALPHABETS and phonemes and "]]" not in phonemes:
        return phonemes
    return None


@dataclass(frozen=True)
class Substitution:
    """A stretch of the string given to espeak that stands for other written words."""

    start: int  # 0-based character offsets in the prepared string
    end: int
    text: str  # what the creator wrote there (used for captions)


def prepare_for_espeak(text: str) -> tuple[str, int, list[Substitution]]:
    """The string handed to espeak, the extra flags it needs, and where it differs from the script.

    espeak-ng ignores <phoneme>; its own [[...]] input does the same job for its alphabet.
    Other alphabets (IPA, pinyin) can't be spoken by espeak, so their words are read instead.
    """
    if not is_ssml(text):
        return text, 0, []
    body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", text)
    flags = SSML
    pieces: list[str] = []
    substitutions: list[Substitution] = []
    length = 0
    cursor = 0
    for match in _PHONEME_ELEMENT.finditer(body):
        pieces.append(body[cursor : match.start()])
        length += match.start() - cursor
        phonemes = _espeak_phonemes(match.group(1))
        if phonemes is None:
            replacement = match.group(2)
        else:
            flags |= PHONEMES
            # espeak's phoneme mode swallows a tag or "." right after "]]" (it reads
            # "slash prosody", "dot"); a space and an empty break end it cleanly.
            replacement = f" [[{phonemes}]]"
            ending = ' <break time="0ms"/>'
            written = re.sub(r"<[^>]*>", "", match.group(2)).strip()
            substitutions.append(Substitution(length, length + len(replacement), written))
            replacement += ending
        pieces.append(replacement)
        length += len(replacement)
        cursor = match.end()
    pieces.append(body[cursor:])
    return "".join(pieces), flags, substitutions
