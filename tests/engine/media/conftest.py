"""Real files of every type the engine sniffs, made once for all the media tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from tests import media_cache, mediagen
from tests.engine.media.helpers import encode_video


@pytest.fixture(scope="package")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    out = {
        "mp4": media_cache.talking_video(12.0),
        "png": mediagen.make_photo(root / "a.png", fmt="png"),
        "jpg": mediagen.make_photo(root / "a.jpg", fmt="jpg"),
        "webp": mediagen.make_photo(root / "a.webp", fmt="webp"),
        "wav": mediagen.make_audio(root / "v.wav", seconds=2.0, fmt="wav"),
        "mp3": mediagen.make_audio(root / "v.mp3", seconds=2.0, fmt="mp3"),
        "m4a": mediagen.make_audio(root / "v.m4a", seconds=2.0, fmt="m4a"),
    }
    out["png_as_mp4"] = root / "talk-really-a-png.mp4"
    shutil.copy(out["png"], out["png_as_mp4"])
    for name, fmt, codec in (("aac", "adts", "aac"), ("ogg", "ogg", "libopus"), ("wma", "asf", "wmav2")):
        out[name] = _encode_tone(root / f"tone.{name}", fmt, codec)
    out["mov"] = encode_video(root / "clip.mov", fmt="mov", width=320, height=240)
    return out


def _encode_tone(path: Path, fmt: str, codec: str) -> Path:
    rate = 48000
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 64000  # WMA refuses to open without one
        frame = av.AudioFrame.from_ndarray(tone[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)
    return path
