"""Text to speech with exact timings.

``synthesize(text, *, voice, speed, volume, pitch) -> Speech``: audio plus phoneme and word
timelines, in memory. espeak's phoneme events carry the sample index at which each phoneme
starts, so the phoneme timeline is exact, not estimated. ``speed`` 0.5–1.5 (1.0 normal),
``volume`` 0–10 (0 normal, 10 loudest, as in Tencent's SpeechParam), ``pitch`` 0–100 (50
normal). ``PhonemeEvent`` is also the unit of recognised speech (``recognition``).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputRejected
from . import espeak
from .espeak import EVENT_PHONEME, EVENT_WORD, SSML, RawEvent
from .scripts import readable_for_voice
from .ssml import Substitution, prepare_for_espeak, validate_script
from .voices import DEFAULT_VOICE, resolve_voice

SPEED_MIN, SPEED_MAX = 0.5, 1.5
VOLUME_MIN, VOLUME_MAX = 0, 10
PITCH_MIN, PITCH_MAX = 0, 100
PAUSE = "_"  # espeak's pause mnemonic; every pause variant (_:, _!, _|) is folded into it

# espeak-ng speaks about 175 words a minute at its normal rate.
_ESPEAK_NORMAL_RATE = 175
# Volume 10 is +8 dB over normal; a soft limiter keeps the loud end from clipping.
_DB_PER_VOLUME_STEP = 0.8
_LIMITER_KNEE = 0.8


@dataclass(frozen=True)
class PhonemeEvent:
    start: float  # seconds
    end: float
    phoneme: str  # espeak-ng mnemonic without stress marks ("_" = pause), or ARPAbet


@dataclass(frozen=True)
class WordEvent:
    start: float
    end: float
    text: str


@dataclass
class Speech:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    phonemes: list[PhonemeEvent]
    words: list[WordEvent]

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


_SPEED_SENTENCE = (
    "The speed {value} is out of range; choose from 0.5 (slowest) to 1.5 (fastest), 1.0 is normal."
)
_VOLUME_SENTENCE = (
    "The volume {value} is out of range; choose a whole number from 0 (normal) to 10 (loudest)."
)
_PITCH_SENTENCE = "The pitch {value} is out of range; choose a whole number from 0 to 100, 50 is normal."


def _check_number(value, low, high, *, field: str, sentence: str, integer: bool) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < low or number > high or (integer and number != int(number)):
        raise InputRejected(sentence.format(value=value), field=field, code=f"{field}_out_of_range")


def _apply_volume(samples: np.ndarray, volume: int) -> np.ndarray:
    """Tencent-style volume (0 normal … 10 loudest) as gain with a soft limiter, never clipping."""
    if volume == 0:
        return samples
    gain = 10.0 ** (volume * _DB_PER_VOLUME_STEP / 20.0)
    boosted = samples * gain
    magnitude = np.abs(boosted)
    over = magnitude > _LIMITER_KNEE
    headroom = 1.0 - _LIMITER_KNEE
    # tanh above the knee: continuous, monotonic, and approaches but never reaches 1.0.
    magnitude[over] = _LIMITER_KNEE + headroom * np.tanh((magnitude[over] - _LIMITER_KNEE) / headroom)
    return (np.sign(boosted) * magnitude * 0.999).astype(np.float32)


def _strip_stress(mnemonic: str) -> str:
    return mnemonic.replace("'", "").replace(",", "").replace("=", "").replace("%", "").strip()


_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|\w+);")


def _entity_start(text: str, offset: int) -> int:
    """espeak places a word spelled as an XML entity (&amp;) on its ";": step back to "&"."""
    if 0 <= offset < len(text) and text[offset] == ";":
        amp = text.rfind("&", max(0, offset - 10), offset)
        if amp >= 0 and _ENTITY.fullmatch(text, amp, offset + 1):
            return amp
    return offset


def _timelines(
    events: list[RawEvent],
    text: str,
    total: int,
    rate: int,
    substitutions: list[Substitution] = (),
) -> tuple[list[PhonemeEvent], list[WordEvent]]:
    """Phoneme and word timelines from espeak's event stream (sample-exact starts)."""
    starts: list[tuple[int, str, int]] = []  # (sample, phoneme, index of the word it belongs to)
    word_marks: list[tuple[int, str, int]] = []  # (sample, text, substitution index or -1)
    for kind, sample, position, length, label in events:
        if kind == EVENT_WORD:
            # text_position is 1-based, in characters of the string espeak was given
            offset = _entity_start(text, position - 1)
            length += position - 1 - offset
            inside = [i for i, s in enumerate(substitutions) if s.start <= offset < s.end]
            word_marks.append((sample, text[offset : offset + length], inside[0] if inside else -1))
        elif kind == EVENT_PHONEME:
            phoneme = _strip_stress(label)
            if phoneme.startswith("_") or not phoneme:
                phoneme = PAUSE
            starts.append((min(max(sample, 0), total), phoneme, len(word_marks) - 1))

    phonemes: list[PhonemeEvent] = []
    owners: list[int] = []
    cursor = 0
    if starts and starts[0][0] > 0:
        starts.insert(0, (0, PAUSE, -1))
    for index, (sample, phoneme, owner) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else total
        sample = max(sample, cursor)
        if end <= sample:
            continue
        if phonemes and phoneme == PAUSE and phonemes[-1].phoneme == PAUSE:
            phonemes[-1] = PhonemeEvent(phonemes[-1].start, end / rate, PAUSE)
        else:
            phonemes.append(PhonemeEvent(sample / rate, end / rate, phoneme))
            owners.append(owner if phoneme != PAUSE else -1)
        cursor = end
    if not phonemes and total > 0:
        phonemes.append(PhonemeEvent(0.0, total / rate, PAUSE))
    elif phonemes and cursor < total:
        last = phonemes[-1]
        phonemes[-1] = PhonemeEvent(last.start, total / rate, last.phoneme)

    words: list[WordEvent] = []
    previous_substitution = -1
    for index, (sample, word_text, substitution) in enumerate(word_marks):
        spoken = [p for p, owner in zip(phonemes, owners) if owner == index]
        if spoken:
            start, end = spoken[0].start, spoken[-1].end
        else:
            start = end = min(sample, total) / rate
        if substitution >= 0:
            # espeak may split a [[phoneme]] run into several words: caption it once, as written.
            if substitution == previous_substitution and words:
                words[-1] = WordEvent(words[-1].start, max(words[-1].end, end), words[-1].text)
                continue
            word_text = substitutions[substitution].text
        previous_substitution = substitution
        cleaned = html.unescape(word_text).strip()
        # Marks that made no sound and hold no letters (a dash, a lone quote) are not words.
        if cleaned and (spoken or any(char.isalnum() for char in cleaned)):
            words.append(WordEvent(start, end, cleaned))
    return phonemes, words


def synthesize(
    text: str,
    *,
    voice: str = DEFAULT_VOICE,
    speed: float = 1.0,
    volume: int = 0,
    pitch: int = 50,
) -> Speech:
    """Speak ``text`` (plain or SSML) in memory; phoneme starts are exact sample positions."""
    script = validate_script(text)
    _check_number(speed, SPEED_MIN, SPEED_MAX, field="speed", integer=False, sentence=_SPEED_SENTENCE)
    _check_number(volume, VOLUME_MIN, VOLUME_MAX, field="volume", integer=True, sentence=_VOLUME_SENTENCE)
    _check_number(pitch, PITCH_MIN, PITCH_MAX, field="pitch", integer=True, sentence=_PITCH_SENTENCE)
    espeak_voice = resolve_voice(voice)
    prepared, flags, substitutions = prepare_for_espeak(script)
    # kanji and hanja the voice would read as "Chinese letter" become kana and hangul
    prepared, substitutions = readable_for_voice(
        prepared, espeak_voice, markup=bool(flags & SSML), substitutions=substitutions
    )
    rate = int(round(_ESPEAK_NORMAL_RATE * float(speed)))
    engine = espeak.instance()
    with espeak.LOCK:
        pcm, events = engine.synth(prepared, voice=espeak_voice, rate=rate, pitch=int(pitch), flags=flags)
    samples = _apply_volume(pcm.astype(np.float32) / 32768.0, int(volume))
    phonemes, words = _timelines(events, prepared, len(samples), engine.sample_rate, substitutions)
    return Speech(samples=samples, sample_rate=engine.sample_rate, phonemes=phonemes, words=words)
