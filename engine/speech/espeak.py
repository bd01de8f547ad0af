"""The espeak-ng binding: the library and its voice data from the ``espeakng-loader`` wheel
(nothing is downloaded), driven through ctypes in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode, so audio
and events come back through a callback, in memory.

espeak keeps its voice, parameters and callback in process-global state: ``instance()`` is
the one engine, and callers hold ``LOCK`` around each use.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from pathlib import Path

import numpy as np

from ..errors import EngineError, InputRejected


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


class VoiceStruct(ctypes.Structure):
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
SSML = 0x10
PHONEMES = 0x100
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
GENDER_MALE, GENDER_FEMALE = 1, 2
_RANDOM_SEED = 1

# An espeak event as synth() returns it: (type, sample, text_position, length, phoneme label).
RawEvent = tuple[int, int, int, int, str]

# espeak keeps its voice, parameters and callback in process-global state: one caller at
# a time, for initialisation and for each synthesis.
LOCK = threading.RLock()


class Espeak:
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
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(VoiceStruct))

        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            str(self.data_path).encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if self.sample_rate <= 0:
            raise EngineError("The speech engine could not start (espeak-ng data not found).")
        self._chunks: list[np.ndarray] = []
        self._events: list[RawEvent] = []
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
            if event.type == EVENT_PHONEME:
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
    ) -> tuple[np.ndarray, list[RawEvent]]:
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


_ENGINE: Espeak | None = None


def instance() -> Espeak:
    """The one espeak instance: a second one would steal the first one's synth callback."""
    global _ENGINE
    if _ENGINE is None:
        with LOCK:
            if _ENGINE is None:
                _ENGINE = Espeak()
    return _ENGINE
