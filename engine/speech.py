"""Speech in and out: text to speech with exact timings, and voice-track loading.

Text to speech is espeak-ng, loaded from the ``espeakng-loader`` wheel (library and voice
data ship inside it, so nothing is downloaded) and driven through ctypes in
``AUDIO_OUTPUT_SYNCHRONOUS`` mode: audio and events come back through a callback, in memory.
espeak's phoneme events carry the sample index at which each phoneme starts, so the
phoneme timeline is exact, not estimated.

Public API (the Django apps and the render pipeline call these):

- ``list_voices() -> list[Voice]``: every espeak language as a male and a female voice.
- ``sample_sentence(voice) -> str``: a short "listen" sentence in the voice's language.
- ``validate_script(text) -> str``: the script rules (4–2,000 characters, valid SSML).
- ``synthesize(text, *, voice, speed, volume, pitch) -> Speech``: audio + phoneme and word
  timelines. ``speed`` 0.5–1.5 (1.0 normal), ``volume`` 0–10 (0 normal, 10 loudest, as in
  Tencent's SpeechParam), ``pitch`` 0–100 (50 normal).
- ``load_audio(path, *, sample_rate=16000) -> np.ndarray``: any WAV/MP3/M4A/AAC/OGG/WMA as
  mono float32, resampled, decoded as a stream.
- ``check_audio_driver(path) -> float``: the voice-track rules (format, ≤100 MB,
  1 s–10 min, not silent); returns the duration in seconds.
- ``write_wav(path, samples, sample_rate)``: 16-bit PCM WAV.
- ``resample(samples, from_rate, to_rate) -> np.ndarray``: mono float32 at another rate.
- ``frame_loudness(samples, sample_rate, fps) -> np.ndarray``: RMS per output frame.
- ``frame_cepstrum(samples, sample_rate, fps) -> np.ndarray``: mel cepstrum per output frame.

Every bad input raises ``InputRejected`` with a sentence the creator can act on.
"""

from __future__ import annotations

import ctypes
import functools
import html
import math
import os
import re
import threading
import unicodedata
import wave
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

import numpy as np

from .errors import EngineError, InputRejected

SCRIPT_MIN_CHARS = 4
SCRIPT_MAX_CHARS = 2000
SPEED_MIN, SPEED_MAX = 0.5, 1.5
VOLUME_MIN, VOLUME_MAX = 0, 10
PITCH_MIN, PITCH_MAX = 0, 100

AUDIO_MIN_SECONDS = 1.0
AUDIO_MAX_SECONDS = 600.0
AUDIO_MAX_BYTES = 100 * 1024 * 1024
AUDIO_FORMATS_SENTENCE = "WAV, MP3, M4A, AAC, OGG or WMA"
# FFmpeg demuxer names for the accepted formats (M4A shares the MP4 demuxer, WMA is ASF).
_ACCEPTED_DEMUXERS = {"wav", "mp3", "aac", "ogg", "asf", "m4a"}
# A track whose loudest 50 ms is below this is silence (or a hiss) as far as lip sync goes.
SILENCE_DBFS = -50.0

DEFAULT_VOICE = "en-us"
FEMALE_VARIANT = "f3"
MALE_VARIANT = "m3"
PAUSE = "_"  # espeak's pause mnemonic; every pause variant (_:, _!, _|) is folded into it

# espeak-ng speaks about 175 words a minute at its normal rate.
_ESPEAK_NORMAL_RATE = 175
# Volume 10 is +8 dB over normal; a soft limiter keeps the loud end from clipping.
_DB_PER_VOLUME_STEP = 0.8
_LIMITER_KNEE = 0.8


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    """espeak_EVENT from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _VoiceStruct(ctypes.Structure):
    """espeak_VOICE from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_SSML = 0x10
_PHONEMES = 0x100
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
_GENDER_MALE, _GENDER_FEMALE = 1, 2
_RANDOM_SEED = 1


@dataclass(frozen=True)
class Voice:
    id: str  # espeak voice name usable in synthesize(), e.g. "en-us" or "en-us+f3"
    name: str  # human label, e.g. "English (America) — female 3"
    language: str  # BCP-47-ish, e.g. "en-US", "fr-FR", "de"
    gender: str  # "female" | "male"


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


# ---------------------------------------------------------------------------------------
# espeak-ng binding
# ---------------------------------------------------------------------------------------

# espeak keeps its voice, parameters and callback in process-global state: one caller at
# a time, for initialisation and for each synthesis.
_LOCK = threading.RLock()


class _Espeak:
    """The loaded library plus the buffers the synth callback fills during one call."""

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = Path(espeakng_loader.get_data_path())
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_SetParameter.restype = ctypes.c_int
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_Synth.restype = ctypes.c_int
        self._set_seed = getattr(self.lib, "espeak_ng_SetRandSeed", None)
        if self._set_seed is not None:
            self._set_seed.argtypes = [ctypes.c_long]
            self._set_seed.restype = None
        self.lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))

        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            str(self.data_path).encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if self.sample_rate <= 0:
            raise EngineError("The speech engine could not start (espeak-ng data not found).")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        # Held on self so the C side never calls a collected trampoline.
        self._callback = _SynthCallback(self._on_synth)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            label = ""
            if event.type == _EVENT_PHONEME:
                label = event.id.string.decode("utf-8", "replace")
            self._events.append((event.type, event.sample, event.text_position, event.length, label))
            index += 1
        return 0

    @functools.cached_property
    def variants(self) -> frozenset[str]:
        """Voice variant names (m1…m8, f1…f5, klatt, …), lower-case."""
        return frozenset(entry.name.lower() for entry in (self.data_path / "voices" / "!v").iterdir())

    def synth(
        self, text: str, *, voice: str, rate: int, pitch: int, flags: int
    ) -> tuple[np.ndarray, list[tuple[int, int, int, int, str]]]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise InputRejected(
                f"The voice “{voice}” isn't available; pick one from the voice list.",
                field="voice",
                code="voice_unknown",
            )
        # Selecting a voice resets the prosody, so parameters go after it.
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        # A fixed seed makes espeak's noise sources repeat. Its pitch-flutter phase still
        # carries over between calls, so a repeat can differ by a few samples, never more.
        if self._set_seed is not None:
            self._set_seed(_RANDOM_SEED)
        self._chunks, self._events = [], []
        encoded = text.encode("utf-8")
        status = self.lib.espeak_Synth(
            encoded,
            len(encoded) + 1,
            0,
            _POS_CHARACTER,
            0,
            _CHARS_UTF8 | flags,
            None,
            None,
        )
        chunks, events = self._chunks, self._events
        self._chunks, self._events = [], []
        if status != 0:
            raise EngineError(f"The speech engine failed (espeak-ng error {status}).")
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return pcm, events


_ENGINE: _Espeak | None = None


def _espeak() -> _Espeak:
    """The one espeak instance: a second one would steal the first one's synth callback."""
    global _ENGINE
    if _ENGINE is None:
        with _LOCK:
            if _ENGINE is None:
                _ENGINE = _Espeak()
    return _ENGINE


# ---------------------------------------------------------------------------------------
# Voices
# ---------------------------------------------------------------------------------------


def _bcp47(code: str) -> str:
    """espeak's lower-case language codes in BCP-47 case: en-us → en-US, cmn-latn → cmn-Latn."""
    parts = code.split("-")
    out = [parts[0].lower()]
    private = False
    for part in parts[1:]:
        if private or part.lower() == "x":
            private = True
            out.append(part.lower())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part)
    return "-".join(out)


def _voice_languages(struct: _VoiceStruct) -> list[str]:
    """Decode espeak_VOICE.languages: (priority byte, zero-terminated name)*, then a zero."""
    languages = []
    address = struct.languages
    while address and ctypes.c_ubyte.from_address(address).value != 0:
        name = ctypes.string_at(address + 1)
        languages.append(name.decode("utf-8", "replace"))
        address += len(name) + 2
    return languages


def _has_dictionary(data_path: Path, identifier: str, language: str) -> bool:
    """Whether the wheel ships the voice's pronunciation dictionary (a few are left out).

    A voice file names its dictionary with a "dictionary" line; otherwise espeak uses the
    language's primary subtag (en-us → en_dict).
    """
    dictionary = language.split("-")[0].lower()
    try:
        for line in (data_path / "lang" / identifier).read_text("utf-8", "replace").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "dictionary":
                dictionary = words[1]
                break
    except OSError:
        pass
    return (data_path / f"{dictionary}_dict").is_file()


@functools.lru_cache(maxsize=1)
def _voice_table() -> tuple[Voice, ...]:
    engine = _espeak()
    voices: dict[str, Voice] = {}
    with _LOCK:
        table = engine.lib.espeak_ListVoices(None)
        index = 0
        while table[index]:
            struct = table[index].contents
            index += 1
            identifier = struct.identifier.decode()
            if identifier.startswith("mb/"):  # MBROLA voices need databases we don't ship
                continue
            base_id = identifier.rsplit("/", 1)[-1].lower()
            languages = _voice_languages(struct) or [base_id]
            if not _has_dictionary(engine.data_path, identifier, languages[0]):
                continue
            language = _bcp47(languages[0])
            label = struct.name.decode("utf-8", "replace")
            base_is_female = struct.gender == _GENDER_FEMALE
            base_gender = "female" if base_is_female else "male"
            other_variant = MALE_VARIANT if base_is_female else FEMALE_VARIANT
            other_gender = "male" if base_is_female else "female"
            voices[base_id] = Voice(base_id, f"{label} — {base_gender}", language, base_gender)
            variant_id = f"{base_id}+{other_variant}"
            voices[variant_id] = Voice(
                variant_id,
                f"{label} — {other_gender} {other_variant[1:]}",
                language,
                other_gender,
            )
    return tuple(sorted(voices.values(), key=lambda v: (v.language.lower(), v.name)))


def list_voices() -> list[Voice]:
    """Every espeak-ng language as a male and a female voice, sorted by language then name."""
    return list(_voice_table())


@functools.lru_cache(maxsize=1)
def _base_voice_ids() -> frozenset[str]:
    return frozenset(v.id for v in _voice_table() if "+" not in v.id)


def _resolve_voice(voice: str) -> str:
    """The espeak name for ``voice``: a listed id, or any base voice + any espeak variant."""
    requested = (voice or "").strip().lower()
    base, _, variant = requested.partition("+")
    if base in _base_voice_ids() and (not variant or variant in _espeak().variants):
        return requested
    raise InputRejected(
        f"The voice “{voice}” isn't available; pick one from the voice list.",
        field="voice",
        code="voice_unknown",
    )


_SAMPLE_SENTENCES = {
    "af": "Hallo, ek is jou nuwe avatar. Lekker om jou te ontmoet.",
    "ca": "Hola, sóc el teu nou avatar. Encantat de conèixer-te.",
    "cs": "Dobrý den, jsem váš nový avatar. Rád vás poznávám.",
    "cy": "Helo, fi yw eich afatar newydd. Braf cwrdd â chi.",
    "da": "Hej, jeg er din nye avatar. Rart at møde dig.",
    "de": "Hallo, ich bin dein neuer Avatar. Schön, dich kennenzulernen.",
    "el": "Γεια σας, είμαι το νέο σας άβαταρ. Χάρηκα για τη γνωριμία.",
    "en": "Hello, I'm your new avatar. It's good to meet you.",
    "eo": "Saluton, mi estas via nova avataro. Estas plezuro koni vin.",
    "es": "Hola, soy tu nuevo avatar. Encantado de conocerte.",
    "et": "Tere, ma olen sinu uus avatar. Meeldiv tutvuda.",
    "fi": "Hei, olen uusi avatarisi. Hauska tavata.",
    "fr": "Bonjour, je suis votre nouvel avatar. Ravi de vous rencontrer.",
    "hi": "नमस्ते, मैं आपका नया अवतार हूँ। आपसे मिलकर खुशी हुई।",
    "hu": "Szia, én vagyok az új avatárod. Örülök, hogy megismerhetlek.",
    "id": "Halo, saya avatar baru Anda. Senang bertemu dengan Anda.",
    "is": "Halló, ég er nýi avatarinn þinn. Gaman að kynnast þér.",
    "it": "Ciao, sono il tuo nuovo avatar. Piacere di conoscerti.",
    "ja": "こんにちは、私はあなたの新しいアバターです。",
    "ko": "안녕하세요, 저는 당신의 새로운 아바타입니다.",
    "la": "Salve, ego sum novum simulacrum tuum.",
    "lt": "Sveiki, aš esu jūsų naujas avataras. Malonu susipažinti.",
    "lv": "Sveiki, es esmu jūsu jaunais avatārs. Prieks iepazīties.",
    "nb": "Hei, jeg er din nye avatar. Hyggelig å treffe deg.",
    "nl": "Hallo, ik ben je nieuwe avatar. Leuk je te ontmoeten.",
    "pl": "Cześć, jestem twoim nowym awatarem. Miło cię poznać.",
    "pt": "Olá, eu sou o seu novo avatar. Prazer em conhecê-lo.",
    "ro": "Bună, sunt noul tău avatar. Îmi pare bine să te cunosc.",
    "ru": "Здравствуйте, я ваш новый аватар. Рад знакомству.",
    "sk": "Dobrý deň, som váš nový avatar. Teší ma.",
    "sv": "Hej, jag är din nya avatar. Trevligt att träffas.",
    "sw": "Habari, mimi ni avatar yako mpya. Nafurahi kukutana nawe.",
    "tr": "Merhaba, ben yeni avatarınım. Tanıştığıma memnun oldum.",
    "uk": "Вітаю, я ваш новий аватар. Радий знайомству.",
    "vi": "Xin chào, tôi là hình đại diện mới của bạn.",
    "cmn": "你好，我是你的新虚拟形象。很高兴认识你。",
    "zh": "你好，我是你的新虚拟形象。很高兴认识你。",
    "yue": "你好，我係你嘅新虛擬形象。好高興認識你。",
}


def sample_sentence(voice: Voice) -> str:
    """A short "listen" sentence in the voice's language (English when we have none)."""
    primary = voice.language.split("-")[0].lower()
    if primary == "cmn" and "latn" in voice.language.lower():
        return _SAMPLE_SENTENCES["en"]  # the Pinyin voice reads romanised text, not Hanzi
    return _SAMPLE_SENTENCES.get(primary, _SAMPLE_SENTENCES["en"])


# ---------------------------------------------------------------------------------------
# Scripts and SSML
# ---------------------------------------------------------------------------------------

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
class _Substitution:
    """A stretch of the string given to espeak that stands for other written words."""

    start: int  # 0-based character offsets in the prepared string
    end: int
    text: str  # what the creator wrote there (used for captions)


def _prepare_for_espeak(text: str) -> tuple[str, int, list[_Substitution]]:
    """The string handed to espeak, the extra flags it needs, and where it differs from the script.

    espeak-ng ignores <phoneme>; its own [[...]] input does the same job for its alphabet.
    Other alphabets (IPA, pinyin) can't be spoken by espeak, so their words are read instead.
    """
    if not is_ssml(text):
        return text, 0, []
    body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", text)
    flags = _SSML
    pieces: list[str] = []
    substitutions: list[_Substitution] = []
    length = 0
    cursor = 0
    for match in _PHONEME_ELEMENT.finditer(body):
        pieces.append(body[cursor : match.start()])
        length += match.start() - cursor
        phonemes = _espeak_phonemes(match.group(1))
        if phonemes is None:
            replacement = match.group(2)
        else:
            flags |= _PHONEMES
            # espeak's phoneme mode swallows a tag or "." right after "]]" (it reads
            # "slash prosody", "dot"); a space and an empty break end it cleanly.
            replacement = f" [[{phonemes}]]"
            ending = ' <break time="0ms"/>'
            written = re.sub(r"<[^>]*>", "", match.group(2)).strip()
            substitutions.append(_Substitution(length, length + len(replacement), written))
            replacement += ending
        pieces.append(replacement)
        length += len(replacement)
        cursor = match.end()
    pieces.append(body[cursor:])
    return "".join(pieces), flags, substitutions


# ---------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------


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
    events: list[tuple[int, int, int, int, str]],
    text: str,
    total: int,
    rate: int,
    substitutions: list[_Substitution] = (),
) -> tuple[list[PhonemeEvent], list[WordEvent]]:
    """Phoneme and word timelines from espeak's event stream (sample-exact starts)."""
    starts: list[tuple[int, str, int]] = []  # (sample, phoneme, index of the word it belongs to)
    word_marks: list[tuple[int, str, int]] = []  # (sample, text, substitution index or -1)
    for kind, sample, position, length, label in events:
        if kind == _EVENT_WORD:
            # text_position is 1-based, in characters of the string espeak was given
            offset = _entity_start(text, position - 1)
            length += position - 1 - offset
            inside = [i for i, s in enumerate(substitutions) if s.start <= offset < s.end]
            word_marks.append((sample, text[offset : offset + length], inside[0] if inside else -1))
        elif kind == _EVENT_PHONEME:
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
    espeak_voice = _resolve_voice(voice)
    prepared, flags, substitutions = _prepare_for_espeak(script)
    rate = int(round(_ESPEAK_NORMAL_RATE * float(speed)))
    engine = _espeak()
    with _LOCK:
        pcm, events = engine.synth(prepared, voice=espeak_voice, rate=rate, pitch=int(pitch), flags=flags)
    samples = _apply_volume(pcm.astype(np.float32) / 32768.0, int(volume))
    phonemes, words = _timelines(events, prepared, len(samples), engine.sample_rate, substitutions)
    return Speech(samples=samples, sample_rate=engine.sample_rate, phonemes=phonemes, words=words)


# ---------------------------------------------------------------------------------------
# Audio files
# ---------------------------------------------------------------------------------------


def _not_audio() -> InputRejected:
    return InputRejected(
        f"This file isn't audio we can read; upload a {AUDIO_FORMATS_SENTENCE} file.",
        field="audio",
        code="audio_unreadable",
    )


def _open_audio(path):
    """Open ``path`` with FFmpeg restricted to local files; return (container, audio stream)."""
    import av

    try:
        container = av.open(str(path), options={"protocol_whitelist": "file"}, timeout=(10.0, 10.0))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise _not_audio() from None
    audio = [s for s in container.streams if s.type == "audio"]
    if not audio:
        container.close()
        raise _not_audio()
    return container, audio[0]


def _demuxer_accepted(container) -> bool:
    names = set(container.format.name.split(","))
    return bool(names & _ACCEPTED_DEMUXERS)


def _format_label(container) -> str:
    return container.format.name.split(",")[0].upper()


def _has_real_video(container) -> bool:
    import av

    for stream in container.streams:
        if stream.type == "video" and not (stream.disposition & av.stream.Disposition.attached_pic):
            return True
    return False


def _decode_chunks(container, stream, sample_rate: int, max_seconds: float | None = None):
    """Yield mono float32 chunks at ``sample_rate``, one decoded frame at a time."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    produced = 0
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                produced += len(chunk)
                yield chunk
            if limit is not None and produced > limit:
                return
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    except av.FFmpegError:
        if produced == 0:
            raise _not_audio() from None
        # A truncated tail is common in uploads; keep what decoded cleanly.


def load_audio(path, *, sample_rate: int = 16000) -> np.ndarray:
    """Decode any WAV/MP3/M4A/AAC/OGG/WMA to mono float32 at ``sample_rate``, streaming."""
    container, stream = _open_audio(path)
    with container:
        chunks = list(_decode_chunks(container, stream, sample_rate))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.clip(np.concatenate(chunks), -1.0, 1.0).astype(np.float32, copy=False)


def check_audio_driver(path) -> float:
    """Apply the voice-track rules (format, size, 1 s–10 min, not silent); return seconds."""
    size = os.path.getsize(path)
    if size > AUDIO_MAX_BYTES:
        raise InputRejected(
            f"The audio file is {size / 1024 / 1024:,.0f} MB; voice tracks must be 100 MB or smaller.",
            field="audio",
            code="audio_too_large",
        )
    container, stream = _open_audio(path)
    with container:
        if _has_real_video(container) or not _demuxer_accepted(container):
            what = "a video" if _has_real_video(container) else f"a {_format_label(container)} file"
            raise InputRejected(
                f"This is {what}; upload the voice track as {AUDIO_FORMATS_SENTENCE}.",
                field="audio",
                code="audio_format",
            )
        declared = float(container.duration) / 1_000_000 if container.duration else 0.0
        if declared > AUDIO_MAX_SECONDS + 1.0:
            raise _too_long(declared)
        rate = 16000
        samples = np.concatenate(
            list(_decode_chunks(container, stream, rate, AUDIO_MAX_SECONDS + 1.0))
            or [np.zeros(0, dtype=np.float32)]
        )
    duration = len(samples) / rate
    if duration > AUDIO_MAX_SECONDS:
        raise _too_long(duration)
    if duration < AUDIO_MIN_SECONDS:
        raise InputRejected(
            f"The audio is {_seconds(duration)} long; a voice track needs 1 s to 10 min.",
            field="audio",
            code="audio_too_short",
        )
    if _peak_window_dbfs(samples, rate) < SILENCE_DBFS:
        raise InputRejected(
            "The audio is silent; upload a track where the voice can be heard.",
            field="audio",
            code="audio_silent",
        )
    return duration


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _too_long(duration: float) -> InputRejected:
    minutes, seconds = divmod(int(round(duration)), 60)
    return InputRejected(
        f"The audio is {minutes} min {seconds:02d} s long; a voice track needs 1 s to 10 min.",
        field="audio",
        code="audio_too_long",
    )


def _peak_window_dbfs(samples: np.ndarray, sample_rate: int, window_s: float = 0.05) -> float:
    """Loudness of the loudest 50 ms, in dBFS: robust to a single click in a silent file."""
    window = max(1, int(window_s * sample_rate))
    usable = len(samples) // window * window
    if usable == 0:
        return -math.inf
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))
    return 20.0 * math.log10(max(float(rms.max()), 1e-12))


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono float32 audio at another sample rate (FFmpeg's resampler, band-limited)."""
    data = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
    if int(from_rate) == int(to_rate) or data.size == 0:
        return data.copy()
    import av

    frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = int(from_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=int(to_rate))
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1] (mono, or frames × channels) as 16-bit PCM WAV."""
    data = np.asarray(samples, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())


def frame_loudness(samples: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """RMS loudness per output frame (window = one frame period centred on the frame time)."""
    count = max(1, int(math.ceil(len(samples) / sample_rate * fps - 1e-9)))
    hop = sample_rate / fps
    half = int(hop / 2)
    squared = np.concatenate([[0.0], np.cumsum(np.asarray(samples, dtype=np.float64) ** 2)])
    centres = (np.arange(count) * hop).astype(np.int64)
    lo = np.clip(centres - half, 0, len(samples))
    hi = np.clip(centres + half, 0, len(samples))
    width = np.maximum(hi - lo, 1)
    return np.sqrt((squared[hi] - squared[lo]) / width).astype(np.float32)


CEPSTRUM_COEFFICIENTS = 13
_CEPSTRUM_RATE = 16000
_CEPSTRUM_WINDOW = 400  # 25 ms
_CEPSTRUM_HOP = 160  # 10 ms
_CEPSTRUM_FFT = 512
_CEPSTRUM_BANDS = 24


@functools.lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    def mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges_mel = np.linspace(mel(80.0), mel(7600.0), _CEPSTRUM_BANDS + 2)
    edges = np.floor((_CEPSTRUM_FFT + 1) * 700.0 * (10 ** (edges_mel / 2595.0) - 1) / _CEPSTRUM_RATE).astype(int)
    bank = np.zeros((_CEPSTRUM_BANDS, _CEPSTRUM_FFT // 2 + 1), np.float32)
    for band in range(_CEPSTRUM_BANDS):
        low, centre, high = edges[band : band + 3]
        bank[band, low:centre] = np.linspace(0.0, 1.0, centre - low, endpoint=False)
        bank[band, centre:high] = np.linspace(1.0, 0.0, high - centre, endpoint=False)
    return bank


@functools.lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    bands = np.arange(_CEPSTRUM_BANDS)
    k = np.arange(CEPSTRUM_COEFFICIENTS)[:, None]
    matrix = np.cos(np.pi * k * (2 * bands[None, :] + 1) / (2 * _CEPSTRUM_BANDS)) * np.sqrt(2.0 / _CEPSTRUM_BANDS)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


def frame_cepstrum(samples: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """Mel cepstrum per output frame: (frames, 13), column 0 the log energy.

    The spectrum is pooled over one frame period centred on the frame time (as
    ``frame_loudness``), then normalised per recording: the energy against the recording's
    loud level and the cepstra against their mean over its speech, so a voice track and the
    avatar footage's own sound, recorded at different gains and through different
    microphones, land on the same scale.
    """
    count = max(1, int(math.ceil(len(samples) / sample_rate * fps - 1e-9)))
    audio = resample(samples, sample_rate, _CEPSTRUM_RATE) if sample_rate != _CEPSTRUM_RATE else np.asarray(samples, np.float32)
    bank, window = _mel_filterbank(), np.hanning(_CEPSTRUM_WINDOW).astype(np.float32)
    padded = np.pad(audio, (_CEPSTRUM_WINDOW // 2, _CEPSTRUM_WINDOW // 2))
    starts = np.arange(0, max(len(audio), 1), _CEPSTRUM_HOP)
    pooled = np.zeros((count, _CEPSTRUM_BANDS), np.float64)
    hits = np.zeros(count, np.float64)
    frame_of = np.clip(np.floor(starts / _CEPSTRUM_RATE * fps + 0.5).astype(np.int64), 0, count - 1)
    for first in range(0, len(starts), 4096):  # bounded memory for a 10-minute track
        chunk = starts[first : first + 4096]
        windows = padded[chunk[:, None] + np.arange(_CEPSTRUM_WINDOW)[None, :]] * window
        power = np.abs(np.fft.rfft(windows, _CEPSTRUM_FFT)) ** 2
        np.add.at(pooled, frame_of[first : first + 4096], power @ bank.T)
        hits += np.bincount(frame_of[first : first + 4096], minlength=count)
    pooled /= np.maximum(hits, 1.0)[:, None]
    log_bands = np.log(pooled + 1e-8).astype(np.float32)
    cepstrum = log_bands @ _dct_matrix().T
    energy = np.log(pooled.sum(axis=1) + 1e-8).astype(np.float32)
    loud = float(np.percentile(energy, 90))
    speech = energy > loud - np.log(1000.0)  # within 30 dB of the loud level
    if speech.any():
        cepstrum[:, 1:] -= cepstrum[speech, 1:].mean(axis=0)
    cepstrum[:, 0] = np.maximum(energy - loud, -np.log(1e5))  # floor at -50 dB: silence is silence
    return cepstrum.astype(np.float32)
