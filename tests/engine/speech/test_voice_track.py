"""engine.speech.voice_track: uploaded voice tracks, checked and decoded with real PyAV, no mocks."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from engine import speech
from tests.engine.speech.helpers import JFK, rejected


def _encode(path: Path, samples: np.ndarray, sample_rate: int, container: str, codec: str) -> Path:
    """Write mono float samples with PyAV in the given container/codec."""
    rates = {"libopus": 48000, "wmav2": 22050}
    rate = rates.get(codec, sample_rate)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if codec not in ("pcm_s16le",):
            stream.bit_rate = 64000
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        stream.codec_context.open()
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name,
            layout="mono",
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    "name,container,codec",
    [
        ("v.wav", "wav", "pcm_s16le"),
        ("v.mp3", "mp3", "libmp3lame"),
        ("v.m4a", "ipod", "aac"),
        ("v.aac", "adts", "aac"),
        ("v.ogg", "ogg", "libopus"),
        ("v.wma", "asf", "wmav2"),
    ],
)
def test_accepted_formats_load_mono_16k(tmp_path, voice_track, name, container, codec):
    path = _encode(tmp_path / name, voice_track.samples, voice_track.sample_rate, container, codec)
    track = speech.check_audio_driver(path)
    assert track.seconds == pytest.approx(voice_track.duration, abs=0.12)
    assert track.extension == name.rsplit(".", 1)[1]
    samples = speech.load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / 16000 == pytest.approx(voice_track.duration, abs=0.12)
    # the same speech, not noise: loudness envelopes agree
    reference = speech.frame_loudness(voice_track.samples, voice_track.sample_rate, 25)
    decoded = speech.frame_loudness(samples, 16000, 25)
    count = min(len(reference), len(decoded)) - 6

    def agreement(lag: int) -> float:  # codecs add or drop a little priming at the start
        return float(np.corrcoef(reference[3 : 3 + count], decoded[3 + lag : 3 + lag + count])[0, 1])

    assert max(agreement(lag) for lag in range(-3, 4)) > 0.9


def test_load_audio_resamples(tmp_path, voice_track):
    path = tmp_path / "v.wav"
    speech.write_wav(path, voice_track.samples, voice_track.sample_rate)
    at_8k = speech.load_audio(path, sample_rate=8000)
    assert len(at_8k) / 8000 == pytest.approx(voice_track.duration, abs=0.01)


def test_write_wav_is_16_bit_pcm(tmp_path):
    path = tmp_path / "tone.wav"
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    speech.write_wav(path, tone, 16000)
    with wave.open(str(path)) as wav:
        assert (wav.getsampwidth(), wav.getnchannels(), wav.getframerate()) == (2, 1, 16000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2") / 32767
    assert np.abs(data - tone).max() < 1e-4


def test_real_speech_recording_passes(tmp_path):
    if not JFK.exists():
        pytest.skip("shared media not present")
    assert speech.check_audio_driver(JFK).seconds == pytest.approx(11.0, abs=0.05)


def test_not_audio_is_rejected(tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio at all\n" * 100)
    error = rejected(speech.check_audio_driver, text, field="audio")
    assert str(error) == ("This file isn't audio we can read; upload a WAV, MP3, M4A, AAC, OGG or WMA file.")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    rejected(speech.check_audio_driver, empty, field="audio")
    rejected(speech.load_audio, text, field="audio")


def test_other_formats_and_video_are_rejected(tmp_path, voice_track):
    flac = _encode(tmp_path / "v.flac", voice_track.samples, voice_track.sample_rate, "flac", "flac")
    assert "FLAC" in str(rejected(speech.check_audio_driver, flac, field="audio"))
    video = tmp_path / "v.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 64, 64
        for index in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 8, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    rejected(speech.check_audio_driver, video, field="audio")


def test_short_long_silent_and_huge_audio_are_rejected(tmp_path):
    rng = np.random.default_rng(0)
    short = tmp_path / "short.wav"
    speech.write_wav(short, 0.2 * rng.standard_normal(8000).astype(np.float32), 16000)
    error = rejected(speech.check_audio_driver, short, field="audio")
    assert str(error) == "The audio is 0.5 s long; a voice track needs 1 s to 10 min."

    silent = tmp_path / "silent.wav"
    speech.write_wav(silent, np.zeros(3 * 16000, np.float32), 16000)
    assert "silent" in str(rejected(speech.check_audio_driver, silent, field="audio"))

    long = tmp_path / "long.wav"
    speech.write_wav(long, 0.1 * rng.standard_normal(8000 * 605).astype(np.float32), 8000)
    assert "10 min" in str(rejected(speech.check_audio_driver, long, field="audio"))

    huge = tmp_path / "huge.wav"
    with open(huge, "wb") as handle:
        handle.truncate(100 * 1024 * 1024 + 1)  # sparse: no disk or time spent
    assert "100 MB" in str(rejected(speech.check_audio_driver, huge, field="audio"))


def test_a_file_ffmpeg_reads_gets_the_extension_of_what_it_is(tmp_path, voice_track):
    # Junk before the first MP3 frame hides the format from a magic-byte sniffer, not from FFmpeg.
    mp3 = _encode(tmp_path / "v.mp3", voice_track.samples, voice_track.sample_rate, "mp3", "libmp3lame")
    padded = tmp_path / "voice"
    padded.write_bytes(b"\0" * 64 + mp3.read_bytes())
    assert speech.check_audio_driver(padded).extension == "mp3"
