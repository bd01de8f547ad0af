"""A creator's transcript aligned to their voice track, and English words recognised without one.

- ``align_transcript(samples, sample_rate, transcript, *, voice) -> Alignment``: word and
  phoneme timings (seconds in the given audio) for the words the creator typed, a normalised
  alignment cost, and whether the transcript matches the recording at all.
- ``transcribe(samples, sample_rate) -> list[WordEvent]``: English words recognised with
  PocketSphinx's bundled en-US language model (machine-made captions). Deterministic.

How a transcript is aligned, in any language: PocketSphinx forced alignment (bundled en-US
acoustic model). English words take their pronunciations from the CMU dictionary, or from
espeak-ng's reading for a word it lacks. Other languages: espeak-ng reads the transcript in
the voice's language (``synthesize``: its phonemes, word by word), and each phoneme becomes
the nearest English phone. The English model then only has to place boundaries between
sounds it knows roughly, which it does to a few tens of milliseconds; the aligned times are
given back to espeak's own phonemes, so the mouth shapes stay the language's. Japanese,
written without spaces, is split into words first (janome), so each gets a caption and an
espeak word event.

This beat dynamic time warping of the recording against espeak's rendering of the transcript
(mean-normalised cepstra, 100–4000 Hz): on the recorded sentences in the benchmark
(``python -m engine align-eval``) DTW put several word starts 150–900 ms off and its
path cost barely separated matching from non-matching transcripts.

What makes the search hold (each measured; without it matching transcripts fail outright):
silence named at both ends of the word sequence; wide beams; a variant without a word-final
s (breathed or dropped in much real speech); a noise floor 40 dB under the speech, as in the
rooms the model learnt from (digital silence fits no silence model); quiet padding; and the
span: the recording's sustained speech first (a click before the first word left out), then
out to the voice-activity edges, and last a search where words may be left out (their times
then shared out between their placed neighbours). Phone boundaries come from a second pass;
where it fails, each word's phones share its time.

Where a word starts (each a rule for any voice and language, checked on espeak speech with
exact word timings as well as on the recordings): a word the search starts in or just before a
pause (a stop's silent closure, a short vowel laid over the hush after a click) is aligned again
with the pause named before it, and a start still in the quiet moves to where the sound
resumes; a word that begins with the sound the previous one ends with ("arenas son") starts in
the middle of that shared sound; a [j] inside a word (the glide of "tiene", "muy") stands as
English IY, not Y.

Whether the transcript belongs to the recording: the forced path's acoustic score per frame,
scaled (``cost``) so recorded speech with its own transcript lands at ~0.3–0.65 and espeak
voices in noise at up to ~0.86. A transcript in another language or for another recording
almost always cannot be aligned at all (the search finds no path through the words), and
otherwise scores worse. ``MISMATCH_COST`` was calibrated on espeak speech in six languages,
two voice variants, noise and telephone band (``python -m engine align-eval --calibrate``).
A transcript that would need far more time than the recording's speech holds is refused
outright (``transcript_too_long``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputRejected
from .recognition import CAPTION_DICTIONARY, english_decoder, voice_activity
from .synthesis import PAUSE, PhonemeEvent, WordEvent, synthesize
from .voice_track import resample
from .voices import is_english

RATE = 16000
# PocketSphinx frame k is the 25.6 ms window starting at k × 10 ms: its time is the window's centre.
_FRAME_CENTRE_S = 0.0128
# Minus the forced path's acoustic score per frame, divided by this, is the cost.
_SCORE_SCALE = 50.0
# Above this cost the transcript is taken not to be what the voice says.
MISMATCH_COST = 0.87
# Refused outright: espeak at its normal rate (~14 sounds/s) needs more than this many times the
# recording's speech, which even very fast speech (~1.8× espeak's rate) cannot hold.
_TOO_LONG_RATIO = 2.6
_TOO_LONG_SLACK_S = 1.0
# The span aligned: from the first to the last stretch of sustained speech (this long, within
# this much of the loud parts), continued while still audible (this far below, this long at
# most), with this much margin.
_SUSTAINED_S = 0.10
_SUSTAINED_DB = 25.0
_AUDIBLE_DB = 35.0
_SOFT_EDGE_S = 0.30
_SPAN_MARGIN_S = 0.10
# The noise floor put under the audio (``_pcm16``): this far below its loud parts, never below
# the absolute floor; and the quiet padding on both sides.
_DYNAMIC_RANGE_DB = 40.0
_NOISE_FLOOR = 10 ** (-64 / 20)
_QUIET_PAD_S = 0.3
# A word's start in a pause: the search often lets a word's first sound take in the quiet before
# it (a stop's silent closure, a short vowel laid over the hush after a click, a weak onset),
# 100-300 ms early; such words are aligned again with a pause named before them, and a start
# still in the quiet moves to where the sound resumes. Quiet: at least this far under the loud
# speech and within this share of the way up from the noise floor; a pause: this many quiet
# frames, found within this many frames of the word's start; before a weak fricative or h
# (which may itself sit at the floor, as an s does on a telephone band) this many more.
_PAUSE_UNDER_LOUD_DB = 20.0
_PAUSE_SHARE = 0.25
_PAUSE_FRAMES = 3
_PAUSE_REACH = 5
_WEAK_ONSETS = {"F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH"}
_WEAK_ONSET_FRAMES = 12
# When the search may leave words out, at least this share must be placed, or the transcript is
# not this recording's.
_MIN_PLACED = 0.8

MISMATCH_SENTENCE = (
    "The transcript doesn't match the voice track (it may be in another language or for another "
    "recording), so the mouth follows the audio alone."
)
NO_SPEECH_SENTENCE = "The voice track has no speech to align the transcript to, so the mouth follows the audio alone."
_TOO_LONG_SENTENCE = (
    "The transcript is too long for the voice track: reading it takes about {needed:.0f} s, but the "
    "recording has only {spoken:.1f} s of speech. Check that it is the transcript of this recording, "
    "or shorten it."
)
_EMPTY_SENTENCE = "The transcript is empty: type the words the voice track says, or leave it out."


@dataclass
class Alignment:
    words: list[WordEvent]
    phonemes: list[PhonemeEvent]
    alphabet: str  # "arpabet" or "espeak", as visemes.trajectory_from_phonemes expects
    cost: float | None  # normalised score per frame: ~0.3–0.65 right words, > MISMATCH_COST not; None: unalignable
    matched: bool
    reason: str = ""  # a sentence for the creator when not matched
    details: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- text

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]")
_OPENING = "(（「『[【〔"
_CLOSING = ")）」』]】〕"


def _language(voice: str) -> str:
    return voice.split("+")[0].lower()


@functools.lru_cache(maxsize=1)
def _japanese_tokenizer():
    from janome.tokenizer import Tokenizer

    return Tokenizer(wakati=True)


def _spaced_transcript(transcript: str, voice: str) -> str:
    """Japanese is written without spaces: put them between its words, so espeak gives a word
    event, and the captions a word, for each. A bracketed reading stays on its word, and a
    number on its counter (scripts.py reads 3ヶ月 and 東京（とうきょう） as written)."""
    if _language(voice) != "ja" or not _JAPANESE.search(transcript):
        return transcript
    spaced = []
    for part in transcript.split():
        text, depth = "", 0
        for token in _japanese_tokenizer().tokenize(part):
            joined = (
                not text or depth > 0 or token[0] in _OPENING or token[0] in _CLOSING
                or text[-1].isdigit() or not any(ch.isalnum() for ch in token)
            )
            text += token if joined else " " + token
            depth += sum(token.count(ch) for ch in _OPENING) - sum(token.count(ch) for ch in _CLOSING)
            depth = max(depth, 0)
        spaced.append(text)
    return " ".join(spaced)


def _speaking_time(phonemes: list[PhonemeEvent]) -> float:
    return sum(p.end - p.start for p in phonemes if p.phoneme != PAUSE)


def _check_length(needed: float, spoken: float) -> None:
    if needed > _TOO_LONG_RATIO * spoken + _TOO_LONG_SLACK_S:
        raise InputRejected(
            _TOO_LONG_SENTENCE.format(needed=needed, spoken=spoken), field="transcript", code="transcript_too_long"
        )


def _frame_levels(
    samples16k: np.ndarray, regions: list[tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per 10 ms frame: level in dB and whether it lies in a VAD region; and the speech's loud
    level (95th percentile inside the regions)."""
    hop = RATE // 100
    count = len(samples16k) // hop
    energy = (np.asarray(samples16k[: count * hop], np.float64).reshape(count, hop) ** 2).mean(axis=1)
    level = 10 * np.log10(energy + 1e-12)
    inside = np.zeros(count, bool)
    for start, end in regions:
        inside[int(start * 100) : int(end * 100) + 1] = True
    if count == 0:
        return level, inside, 0.0
    loud = float(np.percentile(level[inside], 95)) if inside.any() else float(level.max())
    return level, inside, loud


def _sustained_span(samples16k: np.ndarray, regions: list[tuple[float, float]]) -> tuple[float, float]:
    """From the first to the last stretch of sustained, loud-enough speech inside the VAD regions."""
    level, inside, loud = _frame_levels(samples16k, regions)
    if level.size == 0:
        return regions[0][0], regions[-1][1]
    strong = inside & (level >= loud - _SUSTAINED_DB)
    need = int(_SUSTAINED_S * 100)
    run = np.convolve(strong.astype(int), np.ones(need, int), mode="valid") >= need  # run[k]: frames k…k+need-1
    starts = np.flatnonzero(run)
    if starts.size == 0:
        return regions[0][0], regions[-1][1]
    first, last = int(starts[0]), int(starts[-1]) + need
    # soft onsets and endings (an "s", a fading vowel) continue the stretch while they are audible
    reach = int(_SOFT_EDGE_S * 100)
    for _ in range(reach):
        if first == 0 or not level[first - 1] >= loud - _AUDIBLE_DB:
            break
        first -= 1
    for _ in range(reach):
        if last >= level.size or not level[last] >= loud - _AUDIBLE_DB:
            break
        last += 1
    return first / 100.0, last / 100.0


def _pauses_from_audio(
    phonemes: list[PhonemeEvent], regions: list[tuple[float, float]], duration: float, alphabet: str
) -> list[PhonemeEvent]:
    """Where the recording is silent the mouth rests, whatever the alignment stretched over it;
    espeak timelines get explicit pauses, ARPAbet ones gaps (as ``recognition`` gives them)."""
    silences = []
    cursor = 0.0
    for start, end in regions:
        if start > cursor:
            silences.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < duration:
        silences.append((cursor, duration))
    out: list[PhonemeEvent] = []
    for event in phonemes:
        pieces = [(event.start, event.end)]
        if event.phoneme != PAUSE:
            for quiet_start, quiet_end in silences:
                next_pieces = []
                for a, b in pieces:
                    if quiet_end <= a or quiet_start >= b:
                        next_pieces.append((a, b))
                        continue
                    if quiet_start > a:
                        next_pieces.append((a, quiet_start))
                    if quiet_end < b:
                        next_pieces.append((quiet_end, b))
                pieces = next_pieces
        for a, b in pieces:
            if b - a > 1e-3:
                out.append(PhonemeEvent(a, b, event.phoneme))
    out.sort(key=lambda p: p.start)
    if alphabet == "espeak":
        filled: list[PhonemeEvent] = []
        cursor = 0.0
        for event in out:
            if event.start > cursor + 1e-3:
                filled.append(PhonemeEvent(cursor, event.start, PAUSE))
            filled.append(event)
            cursor = max(cursor, event.end)
        if cursor < duration - 1e-3:
            filled.append(PhonemeEvent(cursor, duration, PAUSE))
        return [p for p in filled if p.phoneme != PAUSE or p.end - p.start > 1e-3]
    return [p for p in out if p.phoneme != PAUSE]


# ----------------------------------------------------------------------------- PocketSphinx

_DECODER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _align_decoder():
    # Wide beams: English phones standing in for another language's sounds match poorly, and
    # the default beams prune the one path through all the words (the search then fails).
    return english_decoder(dict="cmudict-en-us.dict", lm=None, beam=1e-80, pbeam=1e-80, wbeam=1e-60)


@functools.lru_cache(maxsize=1)
def _words_decoder():
    # Captions, not dictation: one fast pass (no second, flat-lexicon pass) over the 20,000
    # commonest words, at most 800 active HMMs a frame, word exits within 1e-20 of the best
    # and the 2 best Gaussians per codebook. 30 s of speech decodes in ~1.5 s of CPU where
    # the full dictionary with 1,500 HMMs took ~2.7 s and the defaults ~9 s, with fewer words
    # wrong than that (55 % word error rather than 60 % on three recordings and four espeak voices).
    return english_decoder(dict=CAPTION_DICTIONARY, lm="en-us.lm.bin", fwdflat=False, maxhmmpf=800,
                           wbeam=1e-20, topn=2)


def _pcm16(samples16k: np.ndarray) -> np.ndarray:
    """16-bit PCM over a faint, fixed-seed noise floor, ``_DYNAMIC_RANGE_DB`` below the loud parts.

    The acoustic model's silence was learnt in real rooms, some 30–40 dB under the speech. A
    recording much cleaner than that (a studio, a synthetic voice's digital pauses) has
    "silence" no model fits, and a forced path through it falls out of the search; the floor
    brings such silence back into range and leaves ordinary recordings as they are. The fixed
    seed keeps results repeatable."""
    audio = np.asarray(samples16k, np.float64)
    hop = RATE // 100
    count = len(audio) // hop
    loud = 0.0
    if count:
        rms = np.sqrt((audio[: count * hop].reshape(count, hop) ** 2).mean(axis=1))
        loud = float(np.percentile(rms, 95))
    floor = max(loud * 10 ** (-_DYNAMIC_RANGE_DB / 20), _NOISE_FLOOR)
    noise = np.random.default_rng(0).normal(0.0, floor, len(audio))
    return (np.clip(audio + noise, -1.0, 1.0) * 32767.0).astype(np.int16)


# espeak-ng's English phoneme mnemonics as ARPAbet, for words the CMU dictionary lacks.
_ESPEAK_TO_ARPABET = {
    "a": "AE", "aa": "AE", "a#": "AH", "A:": "AA", "A@": "AA R", "A": "AA", "@": "AH", "@2": "AH",
    "@5": "AH", "@L": "AH L", "@r": "ER", "3": "ER", "3:": "ER", "0": "AA", "O": "AO", "O:": "AO",
    "O@": "AO R", "o@": "AO R", "V": "AH", "U": "UH", "u:": "UW", "u": "UW", "U@": "UH R",
    "i": "IY", "i:": "IY", "i@": "IY R", "i@3": "IY R", "I": "IH", "I2": "IH", "I#": "IH",
    "e": "EH", "E": "EH", "e@": "EH R", "eI": "EY", "aI": "AY", "aI@": "AY ER", "aI3": "AY ER",
    "aU": "AW", "aU@": "AW ER", "OI": "OY", "oU": "OW", "o": "OW", "@U": "OW", "IR": "IH R",
    "VR": "ER", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V",
    "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M",
    "n": "N", "N": "NG", "l": "L", "r": "R", "w": "W", "j": "Y", "tS": "CH", "dZ": "JH",
    "t#": "T", "d#": "D", "n-": "N", "l/": "L", "r-": "R", "m-": "M", "x": "HH", "?": "",
}
# Any language's espeak mnemonics as the nearest English phones (the acoustic model is English;
# the nearest phone is what places the boundaries). Longest match first.
_GENERIC_TO_ARPABET = {
    "t_s\\": "CH", "d_z\\": "JH", "tS": "CH", "dZ": "JH", "ts": "T S", "dz": "D Z", "pf": "P F",
    "t_s": "T S", "s\\": "SH", "z\\": "ZH", "N\\": "N", "n^": "N Y", "l^": "L Y", "r`": "R",
    "aI": "AY", "aU": "AW", "au": "AW", "ai": "AY", "ei": "EY", "eI": "EY", "oI": "OY", "OI": "OY",
    "OY": "OY", "oU": "OW", "Au": "AW", "iA": "Y AA", "iE": "Y EH", "th": "T", "p\\": "F",
    "a": "AA", "A": "AA", "&": "AE", "e": "EH", "E": "EH", "i": "IY", "I": "IH", "o": "OW",
    "O": "AO", "Q": "G", "u": "UW", "U": "UH", "y": "UW", "Y": "UH", "2": "ER", "9": "ER",
    "@": "AH", "3": "ER", "V": "AH", "W": "ER", "p": "P", "b": "B", "t": "T", "d": "D",
    "k": "K", "g": "G", "q": "K", "f": "F", "v": "V", "B": "V", "T": "TH", "D": "DH", "s": "S",
    "z": "Z", "S": "SH", "Z": "ZH", "C": "SH", "x": "HH", "X": "HH", "h": "HH", "G": "G",
    "m": "M", "n": "N", "N": "NG", "J": "N Y", "l": "L", "L": "L Y", "r": "R", "R": "R",
    "w": "W", "j": "Y", "c": "K", "*": "R", "M": "UW", "H": "W",
}
_GENERIC_KEYS = sorted(_GENERIC_TO_ARPABET, key=len, reverse=True)


def _phones_for(mnemonic: str, english: bool) -> list[str]:
    """ARPAbet phones for one espeak phoneme (none for a glottal stop or a pause)."""
    if mnemonic == PAUSE:
        return []
    if english:
        known = _ESPEAK_TO_ARPABET.get(mnemonic)
        if known is not None:
            return known.split()
    phones, rest = [], mnemonic
    while rest:
        for key in _GENERIC_KEYS:
            if rest.startswith(key):
                phones.extend(_GENERIC_TO_ARPABET[key].split())
                rest = rest[len(key):]
                break
        else:
            rest = rest[1:]  # length, stress, nasal and retroflex marks: the base phone says it
    collapsed = [phone for i, phone in enumerate(phones) if i == 0 or phone != phones[i - 1]]
    return collapsed


def _arpabet_for(word: str) -> str:
    """A pronunciation for an English word the dictionary lacks, from espeak's reading."""
    phones = [phone for event in synthesize(word, voice="en-us").phonemes for phone in _phones_for(event.phoneme, True)]
    return " ".join(phones) or "AH"


def _dictionary_key(token: str) -> str:
    return re.sub(r"[^\w']", "", token.lower()).strip("'_")


@dataclass
class _Pronounced:
    """A word to align: its text and its ARPAbet phones; ``sources`` ties each phone to the index
    of the espeak phoneme it stands for (empty for English, whose phones are the answer)."""

    text: str
    phones: list[str]
    sources: list[int]


def _pronounced_words(speech, english: bool) -> tuple[list[_Pronounced], list[PhonemeEvent]]:
    """espeak's words with their phonemes, as ARPAbet pronunciations for PocketSphinx."""
    spoken = [p for p in speech.phonemes if p.phoneme != PAUSE]
    words: list[_Pronounced] = []
    taken = 0
    for index, word in enumerate(speech.words):
        following = speech.words[index + 1].start if index + 1 < len(speech.words) else float("inf")
        phones, sources = [], []
        while taken < len(spoken) and spoken[taken].start < max(word.end, following) - 1e-6:
            for phone in _phones_for(spoken[taken].phoneme, english):
                # [j] after another sound of its word is the glide of a diphthong (Spanish
                # "tiene", "muy", Italian "piove"): an i that moves on, far nearer the English
                # model's IY than its Y, which was learnt from syllable-initial "yes", "you".
                if not english and phone == "Y" and phones:
                    phone = "IY"
                phones.append(phone)
                sources.append(taken)
            taken += 1
        if phones:
            words.append(_Pronounced(word.text, phones, sources))
    return words, spoken


_NOT_WORDS = {"<s>", "</s>", "<sil>"}
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
# Words added to the decoder's dictionary before it is rebuilt (each alignment adds its own).
_MAX_ADDED_WORDS = 20000
_added_words = 0


def _spread(phones: list[str], start: float, end: float) -> list[tuple[str, float, float]]:
    """A word's phones over its time, vowels twice as long as consonants."""
    weights = np.array([2.0 if phone in _VOWELS else 1.0 for phone in phones] or [1.0])
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [(phone, float(a), float(b)) for phone, a, b in zip(phones, edges[:-1], edges[1:])]


@dataclass
class _Forced:
    """PocketSphinx's answer: per word (start, end) or None where it left the word out, the
    phones of the words it placed, and the forced path's acoustic score per frame (None when
    the phone pass failed)."""

    times: list[tuple[float, float] | None]
    phones: list[list[tuple[str, float, float]] | None]
    score: float | None

    @property
    def placed(self) -> float:
        return sum(t is not None for t in self.times) / max(1, len(self.times))


def _keyed(decoder, words: list[_Pronounced]) -> list[str]:
    """A dictionary entry per position (the seg() answer then says which word is which)."""
    global _added_words
    keys = []
    for position, word in enumerate(words):
        pronunciation = " ".join(word.phones)
        key = f"x{position}_" + hashlib.sha1(pronunciation.encode()).hexdigest()[:12]
        if decoder.lookup_word(key) is None:
            decoder.add_word(key, pronunciation, True)
            _added_words += 1
            # A final s is often breathed or dropped (Spanish, Portuguese, French liaison, fast
            # English): without the variant the strict search cannot pass such a word at all.
            if len(word.phones) > 1 and word.phones[-1] in ("S", "Z"):
                decoder.add_word(f"{key}(2)", " ".join(word.phones[:-1]), True)
                _added_words += 1
        keys.append(key)
    return keys


def _base(word: str) -> str:
    """The dictionary word without its variant number: "x3_ab(2)" → "x3_ab"."""
    return re.sub(r"\(\d+\)$", "", word)


def _decode(decoder, pcm: bytes) -> None:
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _forced_alignment(samples16k: np.ndarray, words: list[_Pronounced], span: tuple[float, float], *, strict: bool,
                      pauses_before: frozenset[int] = frozenset()) -> _Forced | None:
    """Align ``words`` to the audio in ``span``. Strict: every word, in order, or None. Not
    strict: each word may be left out (a word said unlike espeak says it, a word not said).
    ``pauses_before``: positions of words that a pause must precede (strict only)."""
    global _added_words
    first = max(0, int((span[0] - _SPAN_MARGIN_S) * RATE))
    last = min(len(samples16k), int((span[1] + _SPAN_MARGIN_S) * RATE))
    pad = np.zeros(int(_QUIET_PAD_S * RATE), np.float32)
    pcm = _pcm16(np.concatenate([pad, samples16k[first:last], pad])).tobytes()
    offset = first / RATE - _QUIET_PAD_S + _FRAME_CENTRE_S
    with _DECODER_LOCK:
        if _added_words > _MAX_ADDED_WORDS:
            _align_decoder.cache_clear()
            _added_words = 0
        decoder = _align_decoder()
        keys = _keyed(decoder, words)
        frame = 1.0 / decoder.config["frate"]
        try:
            if strict:
                # Silence named at both ends: without it the first and last words, whose outer
                # context is the edge of the utterance, often cannot enter or leave the search.
                # A pause is named before each word in ``pauses_before`` too.
                sequence = [f"<sil> {key}" if index in pauses_before and index > 0 else key
                            for index, key in enumerate(keys)]
                decoder.set_align_text("<sil> " + " ".join(sequence) + " <sil>")
            else:
                grammar = "#JSGF V1.0;\ngrammar transcript;\npublic <transcript> = " + " ".join(
                    f"[{key}]" for key in keys) + ";\n"
                decoder.add_jsgf_string("transcript", grammar)
                decoder.activate_search("transcript")
            _decode(decoder, pcm)
        except RuntimeError:
            return None
        hypothesis = decoder.hyp()
        found = [_base(word) for word in hypothesis.hypstr.split()] if hypothesis is not None else []
        if (strict and found != keys) or not found:
            return None
        position_of = {key: index for index, key in enumerate(keys)}
        times: list[tuple[float, float] | None] = [None] * len(words)
        for segment in decoder.seg():
            if _base(segment.word) in position_of:
                times[position_of[_base(segment.word)]] = (
                    offset + segment.start_frame * frame, offset + (segment.end_frame + 1) * frame)
        phones: list[list[tuple[str, float, float]] | None] = [None] * len(words)
        score = None
        try:
            decoder.set_alignment()
            _decode(decoder, pcm)
            alignment = decoder.get_alignment()
        except RuntimeError:
            alignment = None
        if alignment is not None:
            total = 0
            for entry in alignment:
                total += sum(phone.score for phone in entry)
                if _base(entry.name) in position_of:
                    phones[position_of[_base(entry.name)]] = [
                        (p.name, offset + p.start * frame, offset + (p.start + p.duration) * frame) for p in entry]
            score = total / max(1, decoder.n_frames())
    return _Forced(times, phones, score)


def _quiet_frames(samples16k: np.ndarray, regions: list[tuple[float, float]]) -> np.ndarray:
    """Per 10 ms frame: whether the recording is as quiet there as in its pauses (within a
    quarter of the way from its noise floor to its loud speech, and at least 20 dB under it)."""
    level, _, loud = _frame_levels(samples16k, regions)
    if level.size == 0:
        return np.zeros(0, bool)
    floor = float(np.percentile(level, 10))
    return level < min(loud - _PAUSE_UNDER_LOUD_DB, floor + _PAUSE_SHARE * (loud - floor))


def _quiet_run(quiet: np.ndarray, frame: int) -> int:
    """How many quiet frames follow from ``frame`` on."""
    if frame < 0 or frame >= len(quiet) or not quiet[frame]:
        return 0
    loud = np.flatnonzero(~quiet[frame:])
    return int(loud[0]) if loud.size else len(quiet) - frame


def _pause_frames(word: _Pronounced) -> int:
    """Quiet frames that make a pause before this word. A weak fricative or h may itself be at
    the noise floor (an s on a telephone band), so before one only quiet longer than any such
    sound counts."""
    return _PAUSE_FRAMES + (_WEAK_ONSET_FRAMES if word.phones[0] in _WEAK_ONSETS else 0)


def _starting_in_pauses(
    words: list[_Pronounced], times: list[tuple[float, float] | None], quiet: np.ndarray
) -> frozenset[int]:
    """Words the search began in or just before a pause: a quiet run long enough to be one
    (``_pause_frames``) starts within their first ``_PAUSE_REACH`` frames."""
    found = set()
    for index, (word, placed) in enumerate(zip(words, times)):
        if placed is None or index == 0:
            continue
        first = max(0, int(round((placed[0] - _FRAME_CENTRE_S) * 100)))
        if any(_quiet_run(quiet, k) >= _pause_frames(word) for k in range(first, first + _PAUSE_REACH)):
            found.add(index)
    return frozenset(found)


def _split_shared_sounds(
    words: list[_Pronounced], times: list[tuple[float, float]], phones: list[list[tuple[str, float, float]] | None]
) -> tuple[list[tuple[float, float]], list[list[tuple[str, float, float]] | None]]:
    """Where a word ends in the sound the next one begins with ("arenas son", "this side"), the
    two are one continuous sound and nothing in it says where the first word stops; the search
    gives most of it to one side (or all, when it took the variant without a final s). The
    boundary goes to the middle of the shared sound, the estimate that is never more than half
    of it off."""
    times, phones = list(times), [list(found) if found else None for found in phones]
    for index in range(1, len(words)):
        if words[index - 1].phones[-1] != words[index].phones[0] or not phones[index]:
            continue
        previous_end, start = times[index - 1][1], times[index][0]
        if start - previous_end > 0.015:  # a pause between them: two sounds
            continue
        shared_from = phones[index - 1][-1][1] if phones[index - 1] else previous_end
        name, _, shared_to = phones[index][0]
        middle = (shared_from + shared_to) / 2
        times[index - 1] = (times[index - 1][0], middle)
        times[index] = (middle, times[index][1])
        if phones[index - 1]:
            phones[index - 1][-1] = (phones[index - 1][-1][0], shared_from, middle)
        phones[index][0] = (name, middle, shared_to)
    return times, phones


def _heard_starts(
    words: list[_Pronounced], times: list[tuple[float, float]], quiet: np.ndarray
) -> list[tuple[float, float]]:
    """A word the search still begins in or just before a pause (the audio after it fits its
    first sound no better, or the search with the pause named failed) starts where the sound
    resumes, a weak fricative at most its longest length before that: a stop is heard from its
    release, and a caption comes with the word, not with the silence before it. Phones keep
    their times (the lips close for a p before it is heard). The order of the words is kept."""
    out: list[tuple[float, float]] = []
    for word, (start, end) in zip(words, times):
        first = max(0, int(round((start - _FRAME_CENTRE_S) * 100)))
        for frame in range(first, first + _PAUSE_REACH):
            run = _quiet_run(quiet, frame)
            if run >= _pause_frames(word):
                start = max(start, (frame + run - _pause_frames(word) + _PAUSE_FRAMES) / 100.0)
                end = max(end, start)
                break
        out.append((start, end))
    return out


def _fill_missing(forced: _Forced, words: list[_Pronounced], span: tuple[float, float]) -> list[tuple[float, float]]:
    """Times for the words the search left out: the gap between their placed neighbours,
    shared in proportion to their phone counts."""
    times = list(forced.times)
    index = 0
    while index < len(times):
        if times[index] is not None:
            index += 1
            continue
        end_index = index
        while end_index < len(times) and times[end_index] is None:
            end_index += 1
        gap_start = times[index - 1][1] if index > 0 else span[0]
        gap_end = times[end_index][0] if end_index < len(times) else span[1]
        weights = np.array([max(1, len(words[k].phones)) for k in range(index, end_index)], float)
        edges = gap_start + (max(gap_end, gap_start) - gap_start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
        for k, (a, b) in zip(range(index, end_index), zip(edges[:-1], edges[1:])):
            times[k] = (float(a), float(b))
        index = end_index
    return times


def _english_words(transcript: str) -> list[_Pronounced]:
    """The transcript's words with the CMU dictionary's pronunciation, or espeak's."""
    decoder = _align_decoder()
    words = []
    for token in transcript.split():
        key = _dictionary_key(token)
        if not key:
            continue
        known = decoder.lookup_word(key)
        words.append(_Pronounced(token, (known or _arpabet_for(token)).split(), []))
    return words


def check_transcript_fits(transcript: str, *, voice: str, audio_seconds: float) -> None:
    """The form's quick check, before anything is stored: a transcript that espeak needs far
    longer to say than the whole voice track lasts is refused (``align_transcript`` checks
    again against the track's speech alone)."""
    text = " ".join(str(transcript or "").split())
    if not any(ch.isalnum() for ch in text):
        return
    speech = synthesize(_spaced_transcript(text, voice), voice=voice)
    _check_length(_speaking_time(speech.phonemes), audio_seconds)


def align_transcript(samples: np.ndarray, sample_rate: int, transcript: str, *, voice: str) -> Alignment:
    """The transcript's words and phonemes timed in the voice track (seconds in ``samples``).

    Raises ``InputRejected`` (field "transcript") for a transcript that is empty or far too
    long for the recording's speech. A transcript that doesn't match the recording comes back
    with ``matched`` False and a ``reason`` for the creator: the render then follows the audio.
    """
    text = " ".join(str(transcript or "").split())
    if not any(ch.isalnum() for ch in text):
        raise InputRejected(_EMPTY_SENTENCE, field="transcript", code="transcript_empty")
    samples16k = resample(np.asarray(samples, np.float32).reshape(-1), sample_rate, RATE)
    duration = len(samples16k) / RATE
    english = is_english(voice)
    regions = voice_activity(samples16k, RATE)
    spoken = sum(end - start for start, end in regions)
    alphabet = "arpabet" if english else "espeak"
    if not regions:
        return Alignment([], [], alphabet, None, False, NO_SPEECH_SENTENCE)
    speech = synthesize(_spaced_transcript(text, voice), voice=voice)
    _check_length(_speaking_time(speech.phonemes), spoken)
    if english:
        words, espeak_phonemes = _english_words(text), []
    else:
        words, espeak_phonemes = _pronounced_words(speech, english=False)
    # The strict search fails outright if the span cuts off a sound it must place (a soft last
    # syllable), holds a noise no word or silence model fits (a click before the first word), or
    # a word is said unlike its pronunciation here (an aspirated Spanish s): the sustained speech
    # first, then out to the voice-activity edges, then with words allowed to be left out (their
    # times then come from their placed neighbours).
    sustained = _sustained_span(samples16k, regions)
    widest = (regions[0][0], regions[-1][1])
    spans = list(dict.fromkeys([sustained, (sustained[0], regions[-1][1]), widest]))
    forced, span, strict = None, sustained, True
    for span in spans:
        forced = _forced_alignment(samples16k, words, span, strict=True) if words else None
        if forced is not None:
            break
    quiet = _quiet_frames(samples16k, regions)
    if forced is not None:
        pauses = _starting_in_pauses(words, forced.times, quiet)
        again = _forced_alignment(samples16k, words, span, strict=True, pauses_before=pauses) if pauses else None
        if again is not None:
            # The times from the search with the pauses named; the cost from the free one, which
            # ``MISMATCH_COST`` was calibrated on (a pause named where a closure fits better
            # costs a little, and right transcripts already reach close to the threshold).
            forced = _Forced(again.times, again.phones, forced.score)
    if forced is None and words:
        strict, span = False, sustained
        forced = _forced_alignment(samples16k, words, span, strict=False)
    details = {"span": [round(span[0], 3), round(span[1], 3)], "speech_seconds": round(spoken, 3),
               "strict": strict, "placed": round(forced.placed, 3) if forced else 0.0}
    if forced is None or forced.placed < _MIN_PLACED:
        return Alignment([], [], alphabet, None, False, MISMATCH_SENTENCE, details)
    if forced.score is None:
        # no phone pass, so no score: a strict path through every word still says "these words"
        cost = MISMATCH_COST if strict else None
    else:
        cost = round(-forced.score / _SCORE_SCALE, 4)
    matched = cost is not None and cost <= MISMATCH_COST
    word_times = _fill_missing(forced, words, span)
    found_phones = [found if found is not None and len(found) == len(word.phones) else None
                    for word, found in zip(words, forced.phones)]
    word_times, found_phones = _split_shared_sounds(words, word_times, found_phones)
    phone_times = [found or _spread(word.phones, *times) for word, found, times in zip(words, found_phones, word_times)]
    word_times = _heard_starts(words, word_times, quiet)
    timed_words = [WordEvent(start, end, word.text) for word, (start, end) in zip(words, word_times)]
    if english:
        phonemes = [PhonemeEvent(start, end, name) for times in phone_times for name, start, end in times]
    else:
        # each espeak phoneme spans the English phones that stood for it
        bounds: dict[int, list[float]] = {}
        for word, times in zip(words, phone_times):
            for source, (_name, start, end) in zip(word.sources, times):
                low_high = bounds.setdefault(source, [start, end])
                low_high[0], low_high[1] = min(low_high[0], start), max(low_high[1], end)
        phonemes = [PhonemeEvent(bounds[i][0], bounds[i][1], espeak_phonemes[i].phoneme) for i in sorted(bounds)]
    phonemes = _pauses_from_audio(phonemes, regions, duration, alphabet)
    return Alignment(timed_words, phonemes, alphabet, cost, matched, "" if matched else MISMATCH_SENTENCE, details)


def transcribe(samples: np.ndarray, sample_rate: int) -> list[WordEvent]:
    """English words with their times, recognised in each stretch of speech (machine-made)."""
    samples16k = resample(np.asarray(samples, np.float32).reshape(-1), sample_rate, RATE)
    pcm = _pcm16(samples16k)
    words: list[WordEvent] = []
    pad = 0.1
    with _DECODER_LOCK:
        decoder = _words_decoder()
        frame = 1.0 / decoder.config["frate"]
        for start, end in voice_activity(samples16k, RATE):
            first = max(0, int((start - pad) * RATE))
            last = min(len(pcm), int((end + pad) * RATE))
            decoder.reinit_feat()
            decoder.start_utt()
            decoder.process_raw(pcm[first:last].tobytes(), full_utt=True)
            decoder.end_utt()
            offset = first / RATE + _FRAME_CENTRE_S
            # A stretch the search found no path through (noise, a cough) has no segments.
            for segment in decoder.seg() or ():
                name = segment.word
                if name in _NOT_WORDS or name.startswith("[") or name.startswith("+"):
                    continue
                words.append(WordEvent(offset + segment.start_frame * frame,
                                       offset + (segment.end_frame + 1) * frame, _base(name)))
    return words


class BackgroundTranscription:
    """``transcribe`` in a child Python process, started now and collected later, so a render
    can encode its frames meanwhile (PocketSphinx holds the GIL while it decodes, so a thread
    would stall the frames). A plain subprocess, not multiprocessing: it works inside a
    daemonic Celery worker too. If the child fails, ``result`` transcribes here instead."""

    def __init__(self, samples: np.ndarray, sample_rate: int):
        import subprocess
        import sys
        import threading
        from pathlib import Path

        self._samples16k = resample(np.asarray(samples, np.float32).reshape(-1), sample_rate, RATE)
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
        self._child = subprocess.Popen(
            [sys.executable, "-c", "from engine.speech.alignment import _transcribe_child; _transcribe_child()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=root,
        )
        payload = self._samples16k.astype(np.float32).tobytes()
        self._feeder = threading.Thread(target=self._feed, args=(payload,), name="transcribe-feed", daemon=True)
        self._feeder.start()

    def _feed(self, payload: bytes) -> None:
        try:
            self._child.stdin.write(payload)
        except OSError:  # the child died; result() notices
            pass
        finally:
            try:
                self._child.stdin.close()
            except OSError:
                pass

    def result(self, timeout: float = 600.0) -> list[WordEvent]:
        import json
        import subprocess

        try:
            # The feeder closes the child's stdin when it is done (the child reads all of it
            # before it answers); ``communicate`` must not touch it again: flushing a closed
            # pipe raises, and the words the child made were thrown away for a second,
            # in-process transcription at the end of every render.
            self._feeder.join(timeout)
            self._child.stdin = None
            out, _ = self._child.communicate(timeout=timeout)
            if self._child.returncode == 0:
                return [WordEvent(float(a), float(b), str(text)) for a, b, text in json.loads(out)]
        except (subprocess.TimeoutExpired, ValueError, OSError):
            self.cancel()
        return transcribe(self._samples16k, RATE)

    def cancel(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        self._feeder.join()


def _transcribe_child() -> None:
    """The child side of ``BackgroundTranscription``: float32 16 kHz samples on stdin, the
    words as JSON on stdout."""
    import json
    import sys

    samples = np.frombuffer(sys.stdin.buffer.read(), dtype=np.float32)
    words = transcribe(samples, RATE)
    sys.stdout.write(json.dumps([[w.start, w.end, w.text] for w in words]))
