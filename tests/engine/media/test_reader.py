"""engine.media.reader: frames in any order match sequential decoding, colours survive."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from skimage import data

from engine import media


def _digest(rgb: np.ndarray) -> str:
    return hashlib.sha1(rgb.tobytes()).hexdigest()


@pytest.mark.slow
def test_reverse_and_jumping_access_match_sequential_decoding(files):
    sequential = [_digest(f) for f in media.iter_video_frames(files["mp4"])]
    assert len(sequential) == 300
    order = list(range(299, -1, -1)) + list(range(0, 40)) + [250, 251, 10, 9, 8]
    # A tiny cache (8 frames of 640x480) forces many chunk reloads.
    with media.VideoReader(files["mp4"], cache_bytes=8 * 640 * 480 * 3 // 2) as reader:
        assert reader.chunk_frames == 8
        got = [_digest(reader.rgb(f)) for f in reader.frames(order)]
        assert len(reader._cache) <= reader.chunk_frames  # noqa: SLF001 - the memory bound
    assert got == [sequential[i] for i in order]


def test_iter_video_frames_from_a_start_time(files):
    frames = media.iter_video_frames(files["mp4"], start=10.0)
    first = next(frames)
    assert first.shape == (480, 640, 3) and first.dtype == np.uint8
    assert 1 + sum(1 for _ in frames) == 50


def test_colours_survive_an_encode_decode_round_trip(tmp_path):
    picture = np.ascontiguousarray(data.astronaut()[:480, :480])
    with media.VideoWriter(tmp_path / "c.mp4", width=480, height=480, fps=25, crf=12) as writer:
        for _ in range(3):
            writer.write(picture)
    back = next(media.iter_video_frames(tmp_path / "c.mp4"))
    error = back.astype(np.int16) - picture
    assert np.abs(error.reshape(-1, 3).mean(axis=0)).max() < 0.5  # no colour cast
    assert np.abs(error).mean() < 3.0
