"""engine.media.normalise: any footage becomes constant-rate, even-sized, upright H.264,
and footage that already is that is copied packet for packet."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine import media
from tests.engine.media.helpers import encode_video, pattern


def test_normalise_makes_odd_sized_variable_rate_video_even_and_constant(tmp_path):
    source = encode_video(tmp_path / "vfr.mp4", fmt="mp4", width=321, height=241, pix_fmt="yuv444p", jitter_ms=12)
    seen: list[tuple[str, float]] = []
    info = media.normalise_video(source, tmp_path / "n.mp4", lambda stage, f: seen.append((stage, f)))
    assert (info.width % 2, info.height % 2) == (0, 0)
    assert info.fps == pytest.approx(25.0)
    with av.open(str(tmp_path / "n.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = list(container.decode(stream))
        steps = {later.pts - earlier.pts for earlier, later in zip(decoded, decoded[1:])}
    assert len(steps) == 1  # constant frame rate
    assert seen[0] == ("normalise", 0.0) and seen[-1] == ("normalise", 1.0)


def _our_kind_of_video(path: Path, *, frames: int, keyframe_seconds: float = 2.0) -> Path:
    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(int(frames / 25 * 48000)) / 48000).astype(np.float32)
    with media.VideoWriter(path, width=320, height=240, fps=25, audio=tone, sample_rate=48000,
                           keyframe_seconds=keyframe_seconds) as writer:
        for k in range(frames):
            writer.write(pattern(320, 240, k))
    return path


def _video_packets(path: Path) -> list[tuple[int, bool, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.is_keyframe, bytes(p)) for p in container.demux(container.streams.video[0]) if p.size]


def test_normalise_copies_a_file_that_already_is_normal(tmp_path):
    source = _our_kind_of_video(tmp_path / "ours.mp4", frames=60)
    seen: list[tuple[int, np.ndarray]] = []
    info = media.normalise_video(source, tmp_path / "n.mp4", on_frame=lambda i, f: seen.append((i, f.to_ndarray())))
    assert _video_packets(tmp_path / "n.mp4") == _video_packets(source)  # not one pixel re-encoded
    assert (info.frame_count, info.audio_codec) == (60, "aac")
    assert media.moov_before_mdat(tmp_path / "n.mp4")
    # the frames still ride along for tracking, in order, as decoded
    assert [i for i, _ in seen] == list(range(60))
    decoded = [frame.to_ndarray() for frame in media.VideoReader(source).frames(range(60))]
    assert all(np.array_equal(a, b) for (_, a), b in zip(seen, decoded))


def test_normalise_re_encodes_a_file_whose_keyframes_are_too_far_apart(tmp_path):
    # backward loops seek to keyframes: one every 5 s would make each seek decode up to 5 s
    source = _our_kind_of_video(tmp_path / "sparse.mp4", frames=100, keyframe_seconds=5.0)
    assert [key for _, key, _ in _video_packets(source)].count(True) == 1
    media.normalise_video(source, tmp_path / "n.mp4")
    keys = [pts for pts, key, _ in _video_packets(tmp_path / "n.mp4") if key]
    assert len(keys) == 2


def test_normalise_applies_rotation_metadata_to_the_pixels(tmp_path):
    source = encode_video(tmp_path / "phone.mov", fmt="mov", width=320, height=240, rotation=90)
    assert media.probe(source).rotation == 90
    info = media.normalise_video(source, tmp_path / "upright.mp4")
    assert (info.width, info.height, info.rotation) == (240, 320, 0)
    upright = next(media.iter_video_frames(tmp_path / "upright.mp4"))
    expected = np.rot90(pattern(320, 240, 0), 1)  # 90° counter-clockwise, as the matrix says
    assert np.abs(upright.astype(int) - expected).mean() < 6
