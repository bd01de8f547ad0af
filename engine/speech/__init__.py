"""Speech in and out: text to speech with exact timings, voice tracks, and their phones.

Modules:

- ``espeak``: the ctypes binding to espeak-ng (library and voice data from the
  ``espeakng-loader`` wheel).
- ``voices``: the voice table — ``list_voices``, ``sample_sentence``.
- ``ssml``: the script rules and SSML — ``validate_script``, ``is_ssml``.
- ``synthesis``: ``synthesize(text, *, voice, speed, volume, pitch) -> Speech``, audio plus
  phoneme and word timelines (``PhonemeEvent``, ``WordEvent``).
- ``voice_track``: uploaded audio — ``load_audio``, ``check_audio_driver``, ``resample``,
  ``write_wav``.
- ``features``: per-frame ``frame_loudness`` and ``frame_cepstrum``.
- ``alignment``: a creator's transcript timed in their voice track — ``align_transcript``
  (``Alignment``: words, phonemes, cost, matched) — and ``transcribe`` (English words).
- ``recognition``: phones of recorded speech — ``voice_activity``, ``recognize`` (energy VAD
  and PocketSphinx, 16 kHz input: ``RECOGNITION_SAMPLE_RATE``).

The Django apps and the render pipeline use the names re-exported here. Every bad input
raises ``InputRejected`` with a sentence the creator can act on.
"""

from .alignment import Alignment, BackgroundTranscription, align_transcript, check_transcript_fits, transcribe
from .features import (
    CEPSTRUM_COEFFICIENTS,
    cepstrum_and_signature,
    frame_cepstrum,
    frame_loudness,
    voice_distance,
)
from .recognition import FALLBACK_PHONE, recognize, voice_activity
from .recognition import SAMPLE_RATE as RECOGNITION_SAMPLE_RATE
from .ssml import SCRIPT_MAX_CHARS, SCRIPT_MIN_CHARS, is_ssml, validate_script
from .synthesis import (
    PAUSE,
    PITCH_MAX,
    PITCH_MIN,
    SPEED_MAX,
    SPEED_MIN,
    VOLUME_MAX,
    VOLUME_MIN,
    PhonemeEvent,
    Speech,
    WordEvent,
    synthesize,
)
from .voice_track import (
    AUDIO_FORMATS_SENTENCE,
    AUDIO_MAX_BYTES,
    AUDIO_MAX_SECONDS,
    AUDIO_MIN_SECONDS,
    SILENCE_DBFS,
    VoiceTrack,
    check_audio_driver,
    load_audio,
    resample,
    write_wav,
)
from .voices import DEFAULT_VOICE, FEMALE_VARIANT, MALE_VARIANT, Voice, list_voices, sample_sentence

__all__ = [
    "Alignment",
    "align_transcript",
    "BackgroundTranscription",
    "check_transcript_fits",
    "transcribe",
    "AUDIO_FORMATS_SENTENCE",
    "AUDIO_MAX_BYTES",
    "AUDIO_MAX_SECONDS",
    "AUDIO_MIN_SECONDS",
    "CEPSTRUM_COEFFICIENTS",
    "DEFAULT_VOICE",
    "FALLBACK_PHONE",
    "FEMALE_VARIANT",
    "MALE_VARIANT",
    "PAUSE",
    "PITCH_MAX",
    "PITCH_MIN",
    "RECOGNITION_SAMPLE_RATE",
    "SCRIPT_MAX_CHARS",
    "SCRIPT_MIN_CHARS",
    "SILENCE_DBFS",
    "SPEED_MAX",
    "SPEED_MIN",
    "VOLUME_MAX",
    "VOLUME_MIN",
    "PhonemeEvent",
    "Speech",
    "Voice",
    "VoiceTrack",
    "WordEvent",
    "cepstrum_and_signature",
    "check_audio_driver",
    "frame_cepstrum",
    "frame_loudness",
    "is_ssml",
    "list_voices",
    "load_audio",
    "recognize",
    "resample",
    "sample_sentence",
    "synthesize",
    "validate_script",
    "voice_activity",
    "voice_distance",
    "write_wav",
]
