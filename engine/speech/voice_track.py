"""Voice tracks: uploaded audio, checked and decoded as a stream (PyAV/FFmpeg).

- ``load_audio(path, *, sample_rate=16000) -> np.ndarray``: any WAV/MP3/M4A/AAC/OGG/WMA as
  mono float32, resampled.
- ``check_audio_driver(path) -> VoiceTrack``: the voice-track rules (format, ≤100 MB,
  1 s–10 min, not silent); returns the duration and the extension to store the file under.
- ``resample(samples, from_rate, to_rate) -> np.ndarray``: mono float32 at another rate.
- ``write_wav(path, samples, sample_rate)``: 16-bit PCM WAV.
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass

import numpy as np

from ..errors import InputRejected

AUDIO_MIN_SECONDS = 1.0
AUDIO_MAX_SECONDS = 600.0
AUDIO_MAX_BYTES = 100 * 1024 * 1024
AUDIO_FORMATS_SENTENCE = "WAV, MP3, M4A, AAC, OGG or WMA"
# The FFmpeg demuxer that read the file decides its format, and so the extension it is stored
# under: a file FFmpeg reads is never refused later for a name or a header the sniffer missed.
# (M4A shares the MP4 demuxer, WMA is ASF.)
EXTENSION_FOR_DEMUXER = {"wav": "wav", "mp3": "mp3", "aac": "aac", "ogg": "ogg", "asf": "wma", "m4a": "m4a"}
# A track whose loudest 50 ms is below this is silence (or a hiss) as far as lip sync goes.
SILENCE_DBFS = -50.0


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


@dataclass(frozen=True)
class VoiceTrack:
    seconds: float
    extension: str  # what the file really is: wav, mp3, m4a, aac, ogg or wma


def _accepted_extension(container) -> str | None:
    for name in container.format.name.split(","):
        if name in EXTENSION_FOR_DEMUXER:
            return EXTENSION_FOR_DEMUXER[name]
    return None


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


def check_audio_driver(path) -> VoiceTrack:
    """Apply the voice-track rules (format, size, 1 s–10 min, not silent)."""
    size = os.path.getsize(path)
    if size > AUDIO_MAX_BYTES:
        raise InputRejected(
            f"The audio file is {size / 1024 / 1024:,.0f} MB; voice tracks must be 100 MB or smaller.",
            field="audio",
            code="audio_too_large",
        )
    container, stream = _open_audio(path)
    with container:
        extension = _accepted_extension(container)
        if _has_real_video(container) or extension is None:
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
    return VoiceTrack(seconds=duration, extension=extension)


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
