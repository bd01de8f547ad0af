"""Viseme tables: the 15 visemes, their mouth shapes and dominance, and phoneme → viseme maps.

``TARGETS`` holds each viseme's mouth shape (the six ``PARAMETERS``), ``DOMINANCE`` how
strongly and how far in time it pulls the mouth towards that shape. ``ESPEAK_TO_VISEME`` and
``ARPABET_TO_VISEME`` map phonemes to visemes (several, in time order, for diphthongs);
``phoneme_to_visemes`` applies them, with the schwa and borrower overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..speech import PAUSE

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
PARAMETERS = ("jaw", "width", "round", "closure", "tuck", "teeth")

# Target mouth shape per viseme: (jaw, width, round, closure, tuck, teeth).
TARGETS: dict[str, tuple[float, float, float, float, float, float]] = {
    "sil": (0.00, 0.50, 0.00, 1.0, 0.0, 0.00),
    "PP": (0.00, 0.45, 0.10, 1.0, 0.0, 0.00),
    "FF": (0.12, 0.50, 0.00, 0.0, 1.0, 0.80),
    "TH": (0.20, 0.55, 0.00, 0.0, 0.0, 0.70),
    "DD": (0.22, 0.55, 0.00, 0.0, 0.0, 0.50),
    "kk": (0.30, 0.55, 0.00, 0.0, 0.0, 0.35),
    "CH": (0.18, 0.35, 0.65, 0.0, 0.0, 0.75),
    "SS": (0.10, 0.65, 0.00, 0.0, 0.0, 0.90),
    "nn": (0.18, 0.52, 0.00, 0.0, 0.0, 0.45),
    "RR": (0.22, 0.35, 0.55, 0.0, 0.0, 0.35),
    "aa": (1.00, 0.60, 0.00, 0.0, 0.0, 0.45),
    "E": (0.55, 0.72, 0.00, 0.0, 0.0, 0.60),
    "ih": (0.32, 0.80, 0.00, 0.0, 0.0, 0.60),
    "oh": (0.65, 0.30, 0.75, 0.0, 0.0, 0.20),
    "ou": (0.28, 0.15, 1.00, 0.0, 0.0, 0.10),
}
REST = TARGETS["sil"]


@dataclass(frozen=True)
class Dominance:
    strength: float  # dominance inside the segment
    anticipation: float  # decay time constant before the segment (s)
    carryover: float  # decay time constant after it (s)


_VOWEL = Dominance(0.70, 0.080, 0.060)
DOMINANCE: dict[str, Dominance] = {
    "sil": Dominance(1.00, 0.050, 0.050),
    "PP": Dominance(3.00, 0.020, 0.015),
    "FF": Dominance(3.00, 0.025, 0.020),
    "ou": Dominance(1.30, 0.060, 0.045),
    "TH": Dominance(0.80, 0.040, 0.030),
    "CH": Dominance(1.00, 0.060, 0.040),
    "SS": Dominance(0.80, 0.040, 0.030),
    "RR": Dominance(0.80, 0.050, 0.040),
    "kk": Dominance(0.12, 0.030, 0.030),
    "DD": Dominance(0.12, 0.030, 0.030),
    "nn": Dominance(0.12, 0.030, 0.030),
    "aa": _VOWEL,
    "E": _VOWEL,
    "ih": _VOWEL,
    "oh": _VOWEL,
}
SCHWA = Dominance(0.20, 0.050, 0.040)
BORROWED = Dominance(0.05, 0.030, 0.030)  # /h/, glottal stop: the neighbour's shape

# espeak-ng phoneme mnemonics (stress marks removed), shared across its languages.
# A tuple is split in time: diphthongs, affricates that start with a closure.
ESPEAK_TO_VISEME: dict[str, tuple[str, ...]] = {
    "_": ("sil",),
    # bilabials, labiodentals, dentals
    "p": ("PP",),
    "b": ("PP",),
    "m": ("PP",),
    "B": ("PP",),
    "pf": ("PP", "FF"),
    "f": ("FF",),
    "v": ("FF",),
    "F": ("FF",),
    "w": ("ou",),
    "W": ("oh",),
    "T": ("TH",),
    "D": ("TH",),
    # alveolars, postalveolars, palatals, velars
    "t": ("DD",),
    "d": ("DD",),
    "n": ("nn",),
    "l": ("nn",),
    "L": ("nn",),
    "@L": ("nn",),
    "s": ("SS",),
    "z": ("SS",),
    "ts": ("SS",),
    "dz": ("SS",),
    "S": ("CH",),
    "Z": ("CH",),
    "tS": ("CH",),
    "dZ": ("CH",),
    "tc": ("CH",),
    "dj": ("CH",),
    "r": ("RR",),
    "R": ("kk",),
    "*": ("DD",),
    "j": ("ih",),
    "J": ("nn",),
    "N": ("kk",),
    "k": ("kk",),
    "g": ("kk",),
    "x": ("kk",),
    "X": ("kk",),
    "G": ("kk",),
    "q": ("kk",),
    "c": ("kk",),
    "C": ("kk",),
    "Q": ("kk",),
    # vowels
    "a": ("aa",),
    "A": ("aa",),
    "V": ("aa",),
    "&": ("aa",),
    "a#": ("aa",),
    "aa": ("aa",),
    "e": ("E",),
    "E": ("E",),
    "e#": ("E",),
    "i": ("ih",),
    "I": ("ih",),
    "I#": ("ih",),
    "y": ("ou",),
    "Y": ("oh",),
    "i.": ("ih",),
    "o": ("oh",),
    "O": ("oh",),
    "0": ("oh",),
    "u": ("ou",),
    "U": ("ou",),
    "u#": ("ou",),
    "@": ("E",),
    "3": ("RR",),
    "@r": ("RR",),
    # diphthongs and r-coloured vowels
    "aI": ("aa", "ih"),
    "aU": ("aa", "ou"),
    "eI": ("E", "ih"),
    "oU": ("oh", "ou"),
    "OI": ("oh", "ih"),
    "OY": ("oh", "ih"),
    "aI@": ("aa", "ih", "E"),
    "aU@": ("aa", "ou", "E"),
    "i@": ("ih", "E"),
    "i@3": ("ih", "RR"),
    "e@": ("E", "RR"),
    "U@": ("ou", "E"),
    "A@": ("aa", "RR"),
    "o@": ("oh", "RR"),
    "O@": ("oh", "RR"),
    "aI3": ("aa", "ih", "RR"),
    "ai": ("aa", "ih"),
    "au": ("aa", "ou"),
    "ei": ("E", "ih"),
    "oi": ("oh", "ih"),
    "eu": ("E", "ou"),
    "ou": ("oh", "ou"),
}
_ESPEAK_SCHWAS = {"@", "@2", "@5", "@-", "a#", "I2", "3"}
_ESPEAK_BORROWERS = {"h", "H", "?", "h#"}

# CMU/ARPAbet phones as PocketSphinx outputs them.
ARPABET_TO_VISEME: dict[str, tuple[str, ...]] = {
    "AA": ("aa",),
    "AE": ("aa",),
    "AH": ("aa",),
    "AO": ("oh",),
    "AW": ("aa", "ou"),
    "AY": ("aa", "ih"),
    "EH": ("E",),
    "ER": ("RR",),
    "EY": ("E", "ih"),
    "IH": ("ih",),
    "IY": ("ih",),
    "OW": ("oh", "ou"),
    "OY": ("oh", "ih"),
    "UH": ("ou",),
    "UW": ("ou",),
    "B": ("PP",),
    "CH": ("CH",),
    "D": ("DD",),
    "DH": ("TH",),
    "F": ("FF",),
    "G": ("kk",),
    "JH": ("CH",),
    "K": ("kk",),
    "L": ("nn",),
    "M": ("PP",),
    "N": ("nn",),
    "NG": ("kk",),
    "P": ("PP",),
    "R": ("RR",),
    "S": ("SS",),
    "SH": ("CH",),
    "T": ("DD",),
    "TH": ("TH",),
    "V": ("FF",),
    "W": ("ou",),
    "Y": ("ih",),
    "Z": ("SS",),
    "ZH": ("CH",),
    "SIL": ("sil",),
}
_ARPABET_SCHWAS = {"AH"}
_ARPABET_BORROWERS = {"HH"}


_MODIFIERS = re.compile(r"[:;#\-/^~<>!.=+0-9\[\]\"`|]")


def _espeak_lookup(mnemonic: str) -> tuple[str, ...] | None:
    """Visemes for an espeak mnemonic; modifiers (length, nasal, dental …) are tried off."""
    if mnemonic in ESPEAK_TO_VISEME:
        return ESPEAK_TO_VISEME[mnemonic]
    bare = mnemonic.rstrip(':;#-/^~<>!.=0123456789[]"`|')
    if bare in ESPEAK_TO_VISEME:
        return ESPEAK_TO_VISEME[bare]
    # Unknown cluster (a language's own diphthong): read it as a run of known phonemes.
    stripped = _MODIFIERS.sub("", mnemonic)
    pieces: list[str] = []
    position = 0
    while position < len(stripped):
        for size in (3, 2, 1):
            token = stripped[position : position + size]
            if len(token) == size and token in ESPEAK_TO_VISEME:
                pieces.extend(ESPEAK_TO_VISEME[token])
                position += size
                break
        else:
            position += 1  # a symbol we don't know: skip it
    return tuple(pieces) or None


def phoneme_to_visemes(
    phoneme: str, alphabet: str = "espeak"
) -> tuple[tuple[str | None, ...], Dominance | None]:
    """Visemes for one phoneme (several for diphthongs) and a dominance override, if any.

    ``None`` as a viseme means "borrow the neighbour's shape" (/h/, glottal stop, unknown).
    """
    if alphabet == "arpabet":
        name = phoneme.upper().rstrip("012")
        if name in _ARPABET_BORROWERS:
            return (None,), BORROWED
        visemes = ARPABET_TO_VISEME.get(name)
        if visemes is None:
            return (None,), BORROWED
        return visemes, (SCHWA if name in _ARPABET_SCHWAS else None)
    if phoneme == PAUSE or phoneme.startswith("_"):
        return ("sil",), None
    if phoneme in _ESPEAK_BORROWERS:
        return (None,), BORROWED
    visemes = _espeak_lookup(phoneme)
    if visemes is None:
        return (None,), BORROWED
    return visemes, (SCHWA if phoneme in _ESPEAK_SCHWAS else None)
