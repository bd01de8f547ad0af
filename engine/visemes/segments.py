"""A phoneme timeline → contiguous viseme segments covering the clip.

Gaps between phonemes become silence; pauses shorter than ``HOLD_PAUSE`` inside speech hold
the previous shape; diphthongs are split in time; /h/, glottal stops and unknown phonemes
borrow the next sound's shape (``resolve_borrowers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..speech import PAUSE, PhonemeEvent
from .mapping import BORROWED, DOMINANCE, Dominance, phoneme_to_visemes

HOLD_PAUSE = 0.120  # pauses shorter than this keep the mouth where it was

# The first part of a diphthong is the longer one.
_SPLIT_SHARE = {2: (0.6, 0.4), 3: (0.45, 0.35, 0.2)}


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    viseme: str | None  # None: borrow the neighbour's shape
    dominance: Dominance
    phoneme: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


def segments_from_phonemes(phonemes: list[PhonemeEvent], duration: float, alphabet: str) -> list[Segment]:
    """Contiguous segments covering [0, duration]; gaps between phonemes are silence."""
    segments: list[Segment] = []
    cursor = 0.0

    def add_silence(start: float, end: float) -> None:
        if end - start > 1e-6:
            segments.append(Segment(start, end, "sil", DOMINANCE["sil"], PAUSE))

    for event in sorted(phonemes, key=lambda e: e.start):
        start, end = max(event.start, cursor), min(event.end, duration)
        if end - start <= 1e-6:
            continue
        add_silence(cursor, start)
        visemes, override = phoneme_to_visemes(event.phoneme, alphabet)
        shares = _SPLIT_SHARE.get(len(visemes), (1.0 / len(visemes),) * len(visemes))
        piece_start = start
        for part, (viseme, share) in enumerate(zip(visemes, shares)):
            last_part = part == len(visemes) - 1
            piece_end = end if last_part else piece_start + share * (end - start)
            dominance = override or DOMINANCE.get(viseme or "", BORROWED)
            segments.append(Segment(piece_start, piece_end, viseme, dominance, event.phoneme))
            piece_start = piece_end
        cursor = end
    add_silence(cursor, duration)
    return _merge_silences(segments)


def _merge_silences(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for segment in segments:
        if merged and segment.viseme == "sil" and merged[-1].viseme == "sil":
            merged[-1] = Segment(merged[-1].start, segment.end, "sil", merged[-1].dominance, PAUSE)
        else:
            merged.append(segment)
    return merged


def hold_short_pauses(segments: list[Segment]) -> tuple[list[Segment], list[tuple[float, float]]]:
    """Pauses under HOLD_PAUSE inside speech keep the previous shape: the sound before stretches.

    Returns the new segments and the held intervals (their loudness is held too).
    """
    result: list[Segment] = []
    held: list[tuple[float, float]] = []
    for index, segment in enumerate(segments):
        inside_speech = 0 < index < len(segments) - 1
        if segment.viseme == "sil" and inside_speech and segment.duration < HOLD_PAUSE and result:
            previous = result[-1]
            result[-1] = Segment(
                previous.start, segment.end, previous.viseme, previous.dominance, previous.phoneme
            )
            held.append((segment.start, segment.end))
        else:
            result.append(segment)
    return result, held


def resolve_borrowers(segments: list[Segment]) -> list[Segment]:
    """/h/ and friends take the shape of the next sound, or the previous one at a phrase end."""
    resolved = list(segments)
    for index, segment in enumerate(resolved):
        if segment.viseme is not None:
            continue
        donor = next((s.viseme for s in resolved[index + 1 :] if s.viseme is not None), None)
        if donor is None or donor == "sil":
            earlier = next(
                (s.viseme for s in reversed(resolved[:index]) if s.viseme not in (None, "sil")), None
            )
            donor = earlier or donor or "sil"
        resolved[index] = Segment(segment.start, segment.end, donor, segment.dominance, segment.phoneme)
    return resolved
