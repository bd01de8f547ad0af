"""Phonemes → visemes → a per-frame mouth trajectory, with coarticulation.

The renderers (video and photo avatars) draw the mouth from a ``Trajectory``: six
continuous parameters per output frame, each in [0, 1], plus the viseme shown in each frame.

- ``jaw``      jaw opening (0 closed … 1 widest "aa")
- ``width``    lip width / spreading (0.5 neutral, 1 wide "ee", 0 narrow "oo")
- ``round``    lip rounding and protrusion
- ``closure``  lip closure (1 = lips pressed together, as for P/B/M and rest)
- ``tuck``     lower lip tucked under the upper teeth (F/V)
- ``teeth``    how much teeth show

Public API:

- ``VISEMES``: the Oculus/MPEG-4 set of 15 (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou).
- ``ESPEAK_TO_VISEME`` / ``ARPABET_TO_VISEME``: phoneme tables; diphthongs map to several
  visemes and are split in time (``aI`` → aa + ih, ``OW`` → oh + ou, …).
- ``trajectory_from_speech(speech, fps=25) -> Trajectory`` for synthesized scripts.
- ``trajectory_from_audio(samples, sample_rate, fps=25) -> Trajectory`` for voice tracks
  (PocketSphinx phones + VAD + loudness).
- ``trajectory_from_phonemes(phonemes, samples, sample_rate, fps, alphabet)`` for any timeline.
- ``Trajectory.to_json()`` / ``Trajectory.from_json()``; ``plot_trajectory(...)`` draws the PNG.

How it is built:

1. The timeline becomes viseme segments. Pauses shorter than 120 ms *hold* the previous
   shape; longer ones are silence, where the mouth relaxes to closed. /h/, glottal stops and
   unknown phonemes borrow the next sound's shape.
2. Shapes blend by dominance functions (Cohen & Massaro): each segment's dominance is its
   strength inside the segment and decays exponentially outside it, faster after (carry-over)
   than before (anticipation). PP, FF and ou are strong and narrow; kk, DD, nn, /h/ and schwa
   are weak, so they take their neighbours' shape; vowels reach up to 200 ms back over the
   consonants before them. Each frame averages five sub-samples so short phonemes between
   frame times are not lost or aliased.
3. Jaw opening is scaled by the smoothed loudness (quiet speech, smaller mouth).
4. Hard rules: every bilabial gets fully closed frames in the 40–120 ms before its release;
   every viseme run lasts at least 2 frames (a single frame survives only as the transition
   between two closures); silence longer than 120 ms ends exactly at rest (closed).

Everything is deterministic: the same timeline and audio give the same trajectory.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from .speech import CEPSTRUM_COEFFICIENTS, PAUSE, PhonemeEvent, Speech, WordEvent, frame_cepstrum, frame_loudness

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

ANTICIPATION_LIMIT = 0.200  # no segment reaches further back than this
CARRYOVER_LIMIT = 0.150
HOLD_PAUSE = 0.120  # pauses shorter than this keep the mouth where it was
RELAX_TIME = 0.100  # how long the mouth takes to settle at rest in a pause
CLOSURE_MIN, CLOSURE_MAX = 0.040, 0.120  # lips close this long before a bilabial release
MIN_RUN = 2  # frames
_SUBSAMPLES = 5

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


# ----------------------------------------------------------------------------- mapping


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


def _segments_from_phonemes(phonemes: list[PhonemeEvent], duration: float, alphabet: str) -> list[Segment]:
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


def _hold_short_pauses(segments: list[Segment]) -> tuple[list[Segment], list[tuple[float, float]]]:
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


def _resolve_borrowers(segments: list[Segment]) -> list[Segment]:
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


# ----------------------------------------------------------------------------- blending


def _blend(segments: list[Segment], frame_times: np.ndarray, fps: float) -> np.ndarray:
    """Dominance-weighted shape per frame, averaged over sub-samples of the frame period."""
    offsets = (np.arange(_SUBSAMPLES) - (_SUBSAMPLES - 1) / 2) / (_SUBSAMPLES * fps)
    times = (frame_times[:, None] + offsets[None, :]).reshape(-1)
    # a whisper of rest dominance everywhere, so frames far from any segment are at rest
    weights = np.full(times.shape, 1e-4)
    shapes = weights[:, None] * np.array(REST)[None, :]
    for segment in segments:
        first = np.searchsorted(times, segment.start - ANTICIPATION_LIMIT)
        last = np.searchsorted(times, segment.end + CARRYOVER_LIMIT)
        if last <= first:
            continue
        t = times[first:last]
        dominance = segment.dominance
        before = np.exp(-np.maximum(segment.start - t, 0.0) / dominance.anticipation)
        after = np.exp(-np.maximum(t - segment.end, 0.0) / dominance.carryover)
        weight = dominance.strength * before * after
        weights[first:last] += weight
        shapes[first:last] += weight[:, None] * np.array(TARGETS[segment.viseme])[None, :]
    blended = shapes / weights[:, None]
    return blended.reshape(len(frame_times), _SUBSAMPLES, len(PARAMETERS)).mean(axis=1)


def _loudness_gain(
    loudness: np.ndarray, frame_times: np.ndarray, segments: list[Segment], held: list[tuple[float, float]]
) -> np.ndarray:
    """Jaw scale from the smoothed loudness: 0.5 for a murmur up to 1.1 for the loud parts."""
    level = loudness.astype(np.float64).copy()
    for start, end in held:  # a held pause holds the loudness of the sound before it
        inside = (frame_times >= start) & (frame_times < end)
        before = np.flatnonzero(frame_times < start)
        if inside.any() and before.size:
            level[inside] = level[before[-1]]
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])  # ~±2 frames: follows syllables, not pitch periods
    smoothed = np.convolve(np.pad(level, 2, mode="edge"), kernel / kernel.sum(), mode="valid")
    speaking = np.zeros(len(frame_times), dtype=bool)
    for segment in segments:
        if segment.viseme != "sil":
            speaking |= (frame_times >= segment.start) & (frame_times < segment.end)
    reference = float(np.percentile(smoothed[speaking], 90)) if speaking.any() else 0.0
    if reference <= 1e-6:
        return np.ones(len(frame_times))
    return np.clip(0.5 + 0.6 * smoothed / reference, 0.5, 1.1)


# ----------------------------------------------------------------------------- hard rules


def _frame_labels(segments: list[Segment], frame_times: np.ndarray) -> list[str]:
    starts = np.array([s.start for s in segments])
    indices = np.clip(np.searchsorted(starts, frame_times, side="right") - 1, 0, len(segments) - 1)
    return [segments[i].viseme for i in indices]


def _closure_frames(segments: list[Segment], frame_times: np.ndarray, fps: float) -> set[int]:
    """Frames to close fully: those in the 40–120 ms before each bilabial's release."""
    closed: set[int] = set()
    for segment in segments:
        if segment.viseme != "PP":
            continue
        hold = min(max(segment.duration, CLOSURE_MIN), CLOSURE_MAX)
        window_start, window_end = segment.end - hold, segment.end
        inside = np.flatnonzero((frame_times >= window_start) & (frame_times < window_end))
        if inside.size:
            closed.update(int(i) for i in inside)
        else:  # the frame nearest the middle of the closure
            middle = (window_start + window_end) / 2
            closed.add(int(np.clip(round(middle * fps), 0, len(frame_times) - 1)))
    return closed


def _runs(labels: list[str]) -> list[list]:
    runs: list[list] = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    return runs


def _coalesce(runs: list[list]) -> list[list]:
    merged: list[list] = []
    for label, length in runs:
        if merged and merged[-1][0] == label:
            merged[-1][1] += length
        elif length > 0:
            merged.append([label, length])
    return merged


def _enforce_min_run(labels: list[str]) -> list[str]:
    """No viseme shown for fewer than MIN_RUN frames; a closure (PP) is never dropped.

    A one-frame PP grows into a neighbour that can spare a frame; any other one-frame run
    joins its longer open neighbour, or takes a frame from a closure that can spare one.
    Only a single frame boxed in between two two-frame closures is left: it is the
    open-close transition, and dropping it would hide a vowel.
    """
    runs = _runs(labels)
    stuck: set[int] = set()
    while len(runs) > 1:
        short = [i for i, (_, length) in enumerate(runs) if length < MIN_RUN and i not in stuck]
        if not short:
            break
        index = short[0]
        label = runs[index][0]
        neighbours = [j for j in (index - 1, index + 1) if 0 <= j < len(runs)]
        if label == "PP":
            donors = [j for j in neighbours if runs[j][1] > MIN_RUN]
            if donors:
                donor = donors[0]
                runs[donor][1] -= 1
                runs[index][1] += 1
            else:
                absorb = min(neighbours, key=lambda j: (runs[j][0] == "PP", runs[j][1]))
                runs[index][1] += runs[absorb][1]
                runs[absorb][1] = 0
        else:
            open_neighbours = [j for j in neighbours if runs[j][0] != "PP"]
            if open_neighbours:
                target = max(open_neighbours, key=lambda j: runs[j][1])
                runs[target][1] += runs[index][1]
                runs[index][1] = 0
            else:
                donors = [j for j in neighbours if runs[j][1] > MIN_RUN]
                if donors:
                    runs[donors[0]][1] -= 1
                    runs[index][1] += 1
                elif len(neighbours) == 1:  # at the clip's edge: the closure lasts a frame longer
                    runs[neighbours[0]][1] += runs[index][1]
                    runs[index][1] = 0
                else:
                    stuck.add(index)
                    continue
        runs = _coalesce(runs)
        stuck = set()
    return [label for label, length in runs for _ in range(length)]


def _relax_in_silence(
    params: np.ndarray, segments: list[Segment], frame_times: np.ndarray, duration: float
) -> None:
    """Inside pauses the mouth settles at rest within RELAX_TIME of the last/next sound."""
    for segment in segments:
        if segment.viseme != "sil":
            continue
        inside = np.flatnonzero((frame_times >= segment.start) & (frame_times < segment.end))
        if inside.size == 0:
            continue
        t = frame_times[inside]
        since = t - segment.start if segment.start > 1e-9 else np.full(t.shape, np.inf)
        until = segment.end - t if segment.end < duration - 1e-9 else np.full(t.shape, np.inf)
        settled = np.clip(np.minimum(since, until) / RELAX_TIME, 0.0, 1.0)[:, None]
        rest = np.array(REST)[None, :]
        params[inside] = rest + (params[inside] - rest) * (1.0 - settled)


# ----------------------------------------------------------------------------- trajectory


@dataclass
class Trajectory:
    """Per-frame mouth parameters at ``fps``; frame k shows time k / fps."""

    fps: float
    jaw: np.ndarray
    width: np.ndarray
    round: np.ndarray
    closure: np.ndarray
    tuck: np.ndarray
    teeth: np.ndarray
    visemes: list[str]
    phonemes: list[PhonemeEvent] = field(default_factory=list)  # the timeline it came from
    words: list[WordEvent] = field(default_factory=list)
    loudness: np.ndarray | None = None  # RMS per frame of the driving audio
    audio_duration: float | None = None
    cepstrum: np.ndarray | None = None  # (frames, 13) mel cepstrum of the driving audio

    @property
    def frame_count(self) -> int:
        return len(self.visemes)

    @property
    def duration(self) -> float:
        return self.audio_duration if self.audio_duration is not None else self.frame_count / self.fps

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.frame_count) / self.fps

    def parameters(self) -> np.ndarray:
        """frames × 6 array in PARAMETERS order."""
        return np.stack([getattr(self, name) for name in PARAMETERS], axis=1)

    def frame(self, index: int) -> dict[str, float | str]:
        values: dict[str, float | str] = {name: float(getattr(self, name)[index]) for name in PARAMETERS}
        values["viseme"] = self.visemes[index]
        return values

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "duration": round(self.duration, 6),
            "parameters": {name: [round(float(v), 4) for v in getattr(self, name)] for name in PARAMETERS},
            "visemes": list(self.visemes),
            "loudness": None if self.loudness is None else [round(float(v), 5) for v in self.loudness],
            "cepstrum": None if self.cepstrum is None else np.round(self.cepstrum, 3).tolist(),
            "phonemes": [
                {"start": round(p.start, 5), "end": round(p.end, 5), "phoneme": p.phoneme}
                for p in self.phonemes
            ],
            "words": [
                {"start": round(w.start, 5), "end": round(w.end, 5), "text": w.text} for w in self.words
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | dict) -> Trajectory:
        payload = json.loads(data) if isinstance(data, (str, bytes)) else data
        parameters = {name: np.asarray(payload["parameters"][name], dtype=np.float32) for name in PARAMETERS}
        loudness = payload.get("loudness")
        cepstrum = payload.get("cepstrum")
        return cls(
            fps=float(payload["fps"]),
            visemes=list(payload["visemes"]),
            phonemes=[PhonemeEvent(p["start"], p["end"], p["phoneme"]) for p in payload.get("phonemes", [])],
            words=[WordEvent(w["start"], w["end"], w["text"]) for w in payload.get("words", [])],
            loudness=None if loudness is None else np.asarray(loudness, dtype=np.float32),
            audio_duration=payload.get("duration"),
            cepstrum=None if cepstrum is None else np.asarray(cepstrum, dtype=np.float32).reshape(-1, CEPSTRUM_COEFFICIENTS),
            **parameters,
        )


def _fit_frames(values: np.ndarray, count: int) -> np.ndarray:
    """Per-frame values cut or zero-padded to ``count`` frames."""
    values = values[:count]
    if len(values) < count:
        values = np.pad(values, [(0, count - len(values))] + [(0, 0)] * (values.ndim - 1))
    return values


def _frame_count(duration: float, fps: float) -> int:
    return max(1, int(math.ceil(duration * fps - 1e-9)))


def trajectory_from_phonemes(
    phonemes: list[PhonemeEvent],
    samples: np.ndarray,
    sample_rate: int,
    fps: float = 25.0,
    *,
    alphabet: str = "espeak",
    words: list[WordEvent] | None = None,
) -> Trajectory:
    """The mouth trajectory for a phoneme timeline (``alphabet`` "espeak" or "arpabet")."""
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError("fps must be a positive number")
    duration = len(samples) / sample_rate
    frame_times = np.arange(_frame_count(duration, fps)) / fps
    segments = _segments_from_phonemes(phonemes, duration, alphabet)
    segments, held = _hold_short_pauses(segments)
    segments = _resolve_borrowers(segments)
    if not segments:
        segments = [Segment(0.0, max(duration, 1.0 / fps), "sil", DOMINANCE["sil"], PAUSE)]

    params = _blend(segments, frame_times, fps)
    loudness = _fit_frames(frame_loudness(samples, sample_rate, fps), len(frame_times))
    params[:, 0] *= _loudness_gain(loudness, frame_times, segments, held)
    _relax_in_silence(params, segments, frame_times, duration)

    labels = _frame_labels(segments, frame_times)
    for index in _closure_frames(segments, frame_times, fps):
        labels[index] = "PP"
    labels = _enforce_min_run(labels)
    for index, label in enumerate(labels):
        if label == "PP":
            params[index] = TARGETS["PP"]
    params = np.clip(params, 0.0, 1.0).astype(np.float32)
    columns = {name: params[:, i].copy() for i, name in enumerate(PARAMETERS)}
    return Trajectory(
        fps=float(fps),
        visemes=labels,
        phonemes=list(phonemes),
        words=list(words or []),
        loudness=loudness.astype(np.float32),
        audio_duration=duration,
        cepstrum=_fit_frames(frame_cepstrum(samples, sample_rate, fps), len(frame_times)),
        **columns,
    )


def trajectory_from_speech(speech: Speech, fps: float = 25.0) -> Trajectory:
    """Trajectory for synthesized speech, from espeak's exact phoneme timings."""
    return trajectory_from_phonemes(
        speech.phonemes, speech.samples, speech.sample_rate, fps, alphabet="espeak", words=speech.words
    )


def trajectory_from_audio(samples: np.ndarray, sample_rate: int, fps: float = 25.0, **recognition) -> Trajectory:
    """Trajectory for a recorded voice track: VAD + PocketSphinx phones + loudness.
    ``recognition``: ``local_share`` and ``stop`` for ``phonemes.recognize``."""
    from .speech.recognition import SAMPLE_RATE, recognize
    from .speech import resample

    samples16k = resample(samples, sample_rate, SAMPLE_RATE)
    phones = recognize(samples16k, **recognition)
    return trajectory_from_phonemes(phones, samples, sample_rate, fps, alphabet="arpabet")


# ----------------------------------------------------------------------------- picture

_VISEME_COLOURS = {
    "sil": "#dddddd",
    "PP": "#d62728",
    "FF": "#ff7f0e",
    "TH": "#bcbd22",
    "DD": "#8c564b",
    "kk": "#7f7f7f",
    "CH": "#e377c2",
    "SS": "#17becf",
    "nn": "#9467bd",
    "RR": "#aec7e8",
    "aa": "#2ca02c",
    "E": "#98df8a",
    "ih": "#c5b0d5",
    "oh": "#1f77b4",
    "ou": "#393b79",
}


def plot_trajectory(trajectory: Trajectory, samples: np.ndarray, sample_rate: int, path) -> None:
    """PNG with waveform (+ words), phonemes, per-frame visemes and parameter curves on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    duration = max(trajectory.duration, len(samples) / sample_rate)
    width = float(np.clip(duration * 3.0, 10.0, 60.0))
    figure, axes = plt.subplots(
        4, 1, figsize=(width, 8.5), sharex=True, gridspec_kw={"height_ratios": [2.2, 0.8, 0.8, 3.2]}
    )
    wave_axis, phoneme_axis, viseme_axis, curve_axis = axes

    # waveform as a min/max envelope (fast for long audio) with the frame loudness on top
    buckets = int(min(len(samples), width * 200)) or 1
    usable = len(samples) // buckets * buckets
    if usable:
        blocks = np.asarray(samples[:usable]).reshape(buckets, -1)
        x = (np.arange(buckets) + 0.5) * (usable / buckets) / sample_rate
        wave_axis.fill_between(x, blocks.min(axis=1), blocks.max(axis=1), color="#4c72b0", linewidth=0)
    if trajectory.loudness is not None:
        wave_axis.plot(
            trajectory.times, trajectory.loudness, color="#c44e52", linewidth=1.2, label="loudness (RMS)"
        )
        wave_axis.legend(loc="upper left", fontsize=8)
    for word in trajectory.words:
        wave_axis.axvspan(word.start, word.end, color="#f0e442", alpha=0.15, linewidth=0)
        wave_axis.text(
            (word.start + word.end) / 2,
            0.04,
            word.text,
            ha="center",
            va="bottom",
            fontsize=8,
            transform=wave_axis.get_xaxis_transform(),
        )
    wave_axis.set_ylabel("audio")
    wave_axis.set_ylim(-1.0, 1.0)

    for index, phoneme in enumerate(trajectory.phonemes):
        colour = "#eeeeee" if phoneme.phoneme == PAUSE else ("#cfe2f3" if index % 2 else "#fde9c9")
        phoneme_axis.axvspan(phoneme.start, phoneme.end, color=colour, linewidth=0)
        phoneme_axis.text(
            (phoneme.start + phoneme.end) / 2,
            0.5,
            phoneme.phoneme,
            ha="center",
            va="center",
            fontsize=7,
            clip_on=True,
        )
    phoneme_axis.set_yticks([])
    phoneme_axis.set_ylabel("phonemes", rotation=0, ha="right", va="center")

    half = 0.5 / trajectory.fps
    start_index = 0
    for index in range(1, trajectory.frame_count + 1):
        if index == trajectory.frame_count or trajectory.visemes[index] != trajectory.visemes[start_index]:
            label = trajectory.visemes[start_index]
            left, right = start_index / trajectory.fps - half, (index - 1) / trajectory.fps + half
            viseme_axis.axvspan(
                left, right, facecolor=_VISEME_COLOURS.get(label, "#ffffff"), edgecolor="white", linewidth=0.5
            )
            viseme_axis.text(
                (left + right) / 2, 0.5, label, ha="center", va="center", fontsize=7, clip_on=True
            )
            start_index = index
    viseme_axis.set_yticks([])
    viseme_axis.set_ylabel("visemes", rotation=0, ha="right", va="center")

    styles = {
        "jaw": "#2ca02c",
        "width": "#ff7f0e",
        "round": "#1f77b4",
        "closure": "#d62728",
        "tuck": "#9467bd",
        "teeth": "#8c8c8c",
    }
    for name, colour in styles.items():
        curve_axis.plot(
            trajectory.times,
            getattr(trajectory, name),
            color=colour,
            linewidth=1.4,
            label=name,
            marker="." if trajectory.frame_count < 400 else None,
            markersize=3,
        )
    closed = np.flatnonzero(trajectory.closure >= 1.0)
    curve_axis.scatter(
        trajectory.times[closed],
        np.full(closed.shape, 1.04),
        marker="v",
        s=12,
        color="#d62728",
        label="lips closed",
    )
    curve_axis.set_ylim(-0.02, 1.1)
    curve_axis.set_ylabel("mouth parameters")
    curve_axis.legend(loc="upper right", ncol=7, fontsize=8)
    curve_axis.set_xlabel(f"time (s) — frames at {trajectory.fps:g} fps")
    curve_axis.set_xlim(0, duration)
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(str(path), dpi=100, format="png")
    plt.close(figure)
