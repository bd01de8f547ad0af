"""engine.media on real files: sniffing, the guarded probe, decoding, encoding."""

from __future__ import annotations

import hashlib
import shutil
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data

from engine import media
from engine.errors import InputRejected
from tests import mediagen


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    out = {
        "mp4": mediagen.make_talking_video(root / "talk.mp4", seconds=12.0),
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
    out["mov"] = _encode_video(root / "clip.mov", fmt="mov", width=320, height=240)
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


def _pattern(width: int, height: int, index: int) -> np.ndarray:
    """A frame whose quadrants are distinct colours, plus a bar that moves with ``index``."""
    img = np.zeros((height, width, 3), np.uint8)
    img[: height // 2, : width // 2] = (220, 30, 30)
    img[: height // 2, width // 2 :] = (30, 200, 40)
    img[height // 2 :, : width // 2] = (30, 40, 210)
    img[height // 2 :, width // 2 :] = (230, 230, 230)
    x = (index * 4) % max(1, width - 8)
    img[height // 4 : height // 4 + 8, x : x + 8] = 0
    return img


def _encode_video(
    path: Path, *, fmt: str, width: int, height: int, frames: int = 50, pix_fmt: str = "yuv420p",
    rotation: int | None = None, jitter_ms: int = 0,
) -> Path:
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_pattern(width, height, i), format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 40 + (int(rng.integers(-jitter_ms, jitter_ms + 1)) if jitter_ms else 0)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# -- sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mime",
    [
        ("mp4", "video/mp4"),
        ("mov", "video/quicktime"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("webp", "image/webp"),
        ("wav", "audio/wav"),
        ("mp3", "audio/mpeg"),
        ("m4a", "audio/mp4"),
        ("aac", "audio/aac"),
        ("ogg", "audio/ogg"),
        ("wma", "audio/x-ms-wma"),
        ("png_as_mp4", "image/png"),
    ],
)
def test_sniff_type_reads_magic_bytes_not_the_name(files, name, mime):
    assert media.sniff_type(files[name]) == mime


def test_sniff_type_of_unknown_or_missing_files_is_none(tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"just some text, not a video at all")
    assert media.sniff_type(junk) is None
    assert media.sniff_type(tmp_path / "missing.mp4") is None


def test_extension_for_each_accepted_type():
    expected = {
        "video/mp4": "mp4", "video/quicktime": "mov", "image/jpeg": "jpg", "image/png": "png",
        "image/webp": "webp", "audio/wav": "wav", "audio/mpeg": "mp3", "audio/mp4": "m4a",
        "audio/aac": "aac", "audio/ogg": "ogg", "audio/x-ms-wma": "wma",
    }
    for mime, extension in expected.items():
        assert media.EXTENSION_FOR_TYPE[mime] == extension
        assert media.TYPE_DESCRIPTIONS[mime]


# -- probe ---------------------------------------------------------------------------------


def test_probe_describes_a_generated_video(files):
    info = media.probe(files["mp4"])
    assert info.mime == "video/mp4"
    assert info.duration == pytest.approx(12.0, abs=0.1)
    assert (info.width, info.height) == (640, 480)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 300
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.has_video and info.has_audio
    assert info.size_bytes == files["mp4"].stat().st_size
    assert media.MediaInfo.from_dict(info.to_dict()) == info


def test_probe_describes_photos_and_audio(files):
    photo = media.probe(files["jpg"])
    assert (photo.mime, photo.width, photo.height, photo.has_video) == ("image/jpeg", 512, 512, False)
    voice = media.probe(files["mp3"])
    assert voice.mime == "audio/mpeg" and voice.has_audio and not voice.has_video
    assert voice.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("target", ["http://example.com/a.mp4", "https://x/y.mov", "concat:/a.mp4|/b.mp4", "pipe:0"])
def test_probe_refuses_urls_and_protocols(target):
    with pytest.raises(InputRejected) as caught:
        media.probe(target)
    assert caught.value.code == "not_a_file"


def test_playlists_and_concat_scripts_never_reach_ffmpeg(tmp_path):
    playlist = tmp_path / "evil.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n")
    concat = tmp_path / "evil.mov"
    concat.write_text("ffconcat version 1.0\nfile /etc/passwd\n")
    for path in (playlist, concat):
        with pytest.raises(InputRejected):
            media.open_input(path)
        with pytest.raises(InputRejected) as caught:
            media.probe(path)
        assert caught.value.code == "unknown_type"


def test_probe_refuses_a_truncated_video_with_a_sentence(files, tmp_path):
    broken = tmp_path / "cut.mp4"
    broken.write_bytes(files["mp4"].read_bytes()[:3000])
    with pytest.raises(InputRejected) as caught:
        media.probe(broken)
    assert caught.value.code == "unreadable"
    assert str(caught.value).startswith("We couldn't read an MP4 video")


def test_probe_is_time_limited(files):
    started = time.monotonic()
    with pytest.raises(InputRejected) as caught:
        media.probe(files["mp4"], timeout=0.01)  # the child can't even start in 10 ms
    assert caught.value.code == "probe_timeout"
    assert time.monotonic() - started < 2.0


# -- decoding ------------------------------------------------------------------------------


def _digest(rgb: np.ndarray) -> str:
    return hashlib.sha1(rgb.tobytes()).hexdigest()


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


# -- encoding ------------------------------------------------------------------------------


def test_writer_makes_a_faststart_mp4_with_audio(tmp_path):
    rate = 22050
    audio = (0.2 * np.sin(2 * np.pi * 300 * np.arange(rate * 2) / rate)).astype(np.float32)
    path = tmp_path / "w.mp4"
    with media.VideoWriter(path, width=320, height=240, fps=25, audio=audio, sample_rate=rate) as writer:
        for i in range(50):
            writer.write(_pattern(320, 240, i))
    assert media.moov_before_mdat(path)
    info = media.probe_in_process(path)
    assert (info.video_codec, info.audio_codec, info.frame_count) == ("h264", "aac", 50)
    assert info.duration == pytest.approx(2.0, abs=0.04)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize("frames", [27, 35])
def test_writer_closes_whatever_the_audio_length_at_a_resampled_rate(tmp_path, frames):
    # 22.05 kHz audio (espeak's rate) is resampled for AAC; these lengths once ended on two
    # packets with the same timestamp, and the muxer refused the file at close
    seconds = frames / 25 + 0.03
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 22050))).astype(np.float32)
    path = tmp_path / "speech.mp4"
    with media.VideoWriter(path, width=320, height=240, fps=25, audio=audio, sample_rate=22050) as writer:
        for k in range(frames):
            writer.write(_pattern(320, 240, k))
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        decoded = sum(frame.samples for frame in container.decode(stream))
        assert decoded / stream.sample_rate == pytest.approx(seconds, abs=0.03)


def test_writer_removes_the_partial_file_on_error(tmp_path):
    path = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError):
        with media.VideoWriter(path, width=320, height=240, fps=25) as writer:
            writer.write(_pattern(320, 240, 0))
            raise RuntimeError("boom")
    assert not path.exists()


def test_normalise_makes_odd_sized_variable_rate_video_even_and_constant(tmp_path):
    source = _encode_video(tmp_path / "vfr.mp4", fmt="mp4", width=321, height=241, pix_fmt="yuv444p", jitter_ms=12)
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
            writer.write(_pattern(320, 240, k))
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
    source = _encode_video(tmp_path / "phone.mov", fmt="mov", width=320, height=240, rotation=90)
    assert media.probe(source).rotation == 90
    info = media.normalise_video(source, tmp_path / "upright.mp4")
    assert (info.width, info.height, info.rotation) == (240, 320, 0)
    upright = next(media.iter_video_frames(tmp_path / "upright.mp4"))
    expected = np.rot90(_pattern(320, 240, 0), 1)  # 90° counter-clockwise, as the matrix says
    assert np.abs(upright.astype(int) - expected).mean() < 6


def test_preview_and_poster(files, tmp_path):
    started = time.monotonic()
    info = media.write_preview(files["mp4"], tmp_path / "preview.mp4", 3.0)
    assert time.monotonic() - started < 5.0
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert info.has_audio
    poster = media.write_poster(files["mp4"], tmp_path / "poster.jpg")
    assert media.sniff_type(poster) == "image/jpeg"
    from PIL import Image

    with Image.open(poster) as image:
        assert image.size == (640, 480)
        # The astronaut's orange suit sits in the lower middle: red well above blue.
        r, g, b = np.asarray(image.convert("RGB"))[380:440, 250:330].reshape(-1, 3).mean(axis=0)
        assert r > b + 60
