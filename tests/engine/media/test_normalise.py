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


def _stream_facts(path: Path) -> tuple[int, int, int, bool]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for p in container.demux(stream) if p.size)
        return stream.width, stream.height, frames, bool(container.streams.audio)


def test_a_source_larger_than_the_cap_keeps_a_full_size_master_packet_for_packet(tmp_path):
    # 320×240 standing in for 4K, a cap of 160 standing in for 1,920
    source = _our_kind_of_video(tmp_path / "big.mp4", frames=50)
    seen: list[int] = []
    info = media.normalise_video(source, tmp_path / "n.mp4", max_long_side=160, master=tmp_path / "master.mp4",
                                 on_frame=lambda i, f: seen.append((f.width, f.height)))
    assert (info.width, info.height, info.frame_count) == (160, 120, 50)
    assert set(seen) == {(160, 120)}  # the analysis sees the small frames
    # already normal at its own size: nothing re-encoded for the master
    assert _video_packets(tmp_path / "master.mp4") == _video_packets(source)
    assert _stream_facts(tmp_path / "master.mp4") == (320, 240, 50, True)


def test_a_master_that_must_be_encoded_shows_the_same_frames_as_the_small_media(tmp_path):
    source = encode_video(tmp_path / "odd.mp4", fmt="mp4", width=322, height=242, frames=40, jitter_ms=12)
    info = media.normalise_video(source, tmp_path / "n.mp4", max_long_side=162, master=tmp_path / "master.mp4",
                                 frame_filter=lambda rgb: 255 - rgb)
    assert _stream_facts(tmp_path / "master.mp4") == (322, 242, info.frame_count, False)
    small = [f.to_ndarray(format="rgb24") for f in media.VideoReader(tmp_path / "n.mp4").frames(range(info.frame_count))]
    large = [f.to_ndarray(format="rgb24") for f in
             media.VideoReader(tmp_path / "master.mp4").frames(range(info.frame_count))]
    import cv2

    for a, b in zip(small, large):
        shrunk = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(shrunk - a).mean() < 6  # the same picture (the filter applied to both)
    # the moving bar is where the small frames have it, frame for frame
    assert np.abs(large[0].astype(int) - large[5].astype(int)).max() > 100


def test_a_source_within_the_cap_gets_no_master(tmp_path):
    source = _our_kind_of_video(tmp_path / "small.mp4", frames=20)
    media.normalise_video(source, tmp_path / "n.mp4", max_long_side=1920, master=tmp_path / "master.mp4")
    assert not (tmp_path / "master.mp4").exists()


def _clip_facts(path: Path) -> tuple[int, int, int, float]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for p in container.demux(video) if p.size)
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].sample_rate
    return video.width, video.height, frames, samples / rate


@pytest.mark.parametrize("keyframe_seconds", [2.0, 5.0], ids=["copied", "re-encoded"])
def test_the_preview_clip_rides_along_and_is_ready_before_the_pass_ends(tmp_path, keyframe_seconds):
    source = _our_kind_of_video(tmp_path / "src.mp4", frames=100, keyframe_seconds=keyframe_seconds)
    seen: list[int] = []
    ready: list[tuple[Path, int]] = []
    clip = media.PreviewClip(tmp_path / "preview.mp4", seconds=1.0, max_long_side=160,
                             on_ready=lambda path: ready.append((path, len(seen))))
    info = media.normalise_video(source, tmp_path / "n.mp4", on_frame=lambda i, f: seen.append(i), preview=clip)
    assert info.frame_count == 100
    copied = _video_packets(tmp_path / "n.mp4") == _video_packets(source)
    assert copied == (keyframe_seconds == 2.0)
    assert len(ready) == 1 and ready[0][0] == tmp_path / "preview.mp4"
    assert ready[0][1] < 60  # long before the end: as soon as its second is through
    width, height, frames, seconds = _clip_facts(tmp_path / "preview.mp4")
    assert (width, height, frames) == (160, 120, 25)
    assert seconds == pytest.approx(1.0, abs=0.03)
    # its pictures are the footage's first ones
    first = media.VideoReader(tmp_path / "preview.mp4").frames([10])
    expected = media.VideoReader(source).frames([10])
    import cv2

    a = next(iter(first)).to_ndarray(format="rgb24").astype(int)
    b = cv2.resize(next(iter(expected)).to_ndarray(format="rgb24"), (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(a - b).mean() < 8


def test_footage_shorter_than_the_preview_clip_is_all_of_it(tmp_path):
    source = _our_kind_of_video(tmp_path / "short.mp4", frames=30, keyframe_seconds=5.0)
    ready: list[Path] = []
    media.normalise_video(source, tmp_path / "n.mp4", preview=media.PreviewClip(tmp_path / "p.mp4", seconds=3.0,
                                                                               on_ready=ready.append))
    assert ready == [tmp_path / "p.mp4"]
    assert _clip_facts(tmp_path / "p.mp4")[2:] == (30, pytest.approx(1.2, abs=0.03))


@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_a_re_encoded_source_keeps_its_picture(tmp_path, noise):
    # The prepared media is encoded fast (PREPARED_PRESET); every render starts from it, so it
    # must stay close to the upload, camera noise included: luma PSNR against the decoded source.
    from skimage import data

    rng = np.random.default_rng(3)
    face = np.ascontiguousarray(data.astronaut()[:480, :, :])
    source = tmp_path / "upload.mp4"
    with media.VideoWriter(source, width=512, height=480, fps=25, crf=8, keyframe_seconds=10.0) as writer:
        for k in range(60):  # 2.4 s and one keyframe: must be re-encoded
            moved = np.roll(face, (k % 7, k % 5), axis=(0, 1)).astype(np.float32)
            writer.write(np.clip(moved + rng.normal(0.0, noise, moved.shape), 0, 255).astype(np.uint8))
    media.normalise_video(source, tmp_path / "n.mp4")
    assert _video_packets(tmp_path / "n.mp4") != _video_packets(source)  # re-encoded, not copied
    with av.open(str(source)) as a, av.open(str(tmp_path / "n.mp4")) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0)))
    assert len(pairs) == 60
    errors = [np.mean((x.to_ndarray(format="gray").astype(np.float64) - y.to_ndarray(format="gray")) ** 2)
              for x, y in pairs]
    psnr = 10 * np.log10(255.0**2 / np.mean(errors))
    assert psnr >= (42.0 if noise else 46.0), psnr  # superfast at crf 20, the old setting: 40.6 and 44.1
