"""The engine's command line: prepare, render, bench (eval is in test_eval.py)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from engine.__main__ import _intervals, main
from engine.errors import InputRejected
from tests import media_cache, mediagen

TEXT = "Hello there. This avatar was prepared and rendered from the command line."


def _video_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames / float(stream.average_rate)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def video_avatar(root) -> Path:
    source = media_cache.talking_video(12.0)
    assert main(["prepare", str(source), "-o", str(root / "avatar")]) == 0
    return root / "avatar"


# -- argument parsing ----------------------------------------------------------------------


def test_disable_intervals_parse_and_refuse_nonsense():
    assert _intervals("1-2, 3.5-4") == [(1.0, 2.0), (3.5, 4.0)]
    assert _intervals("") == [] and _intervals(None) == []
    for bad in ("1-", "abc", "3-2", "-1-2"):
        with pytest.raises(InputRejected):
            _intervals(bad)


# -- prepare -------------------------------------------------------------------------------


@pytest.mark.slow
def test_prepare_writes_a_manifest_and_prints_the_report(video_avatar, capsys):
    manifest = json.loads((video_avatar / "avatar.json").read_text())
    assert manifest["kind"] == "video"
    for key in ("media", "poster", "preview", "library"):
        assert manifest[key], key
        assert (video_avatar / manifest[key]).exists(), key
    assert manifest["fps"] == 25 and 11.9 <= manifest["duration"] <= 12.1
    assert manifest["report"]["total_frames"] > 0


def test_prepare_refuses_a_photo_without_a_face_with_the_preflight_sentence(tmp_path, capsys):
    photo = mediagen.make_photo(tmp_path / "coffee.png", subject="coffee")
    assert main(["prepare", str(photo), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "face" in err
    assert not (tmp_path / "out" / "avatar.json").exists()


def test_prepare_refuses_a_missing_file(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out")]) == 2
    assert "There is no file" in capsys.readouterr().err


# -- render --------------------------------------------------------------------------------


@pytest.mark.slow
def test_render_a_script_with_a_progress_line(video_avatar, root, capsys):
    out = root / "script.mp4"
    assert main(["render", "--avatar", str(video_avatar), "--text", TEXT, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "frames" in captured.err and "100%" in captured.err
    assert str(out) in captured.out
    assert out.stat().st_size > 0 and out.with_suffix(".jpg").stat().st_size > 0
    assert 3.0 < _video_seconds(out) < 8.0
    assert f"captions {out.with_suffix('.srt')} {out.with_suffix('.vtt')}" in captured.out
    assert out.with_suffix(".vtt").read_text("utf-8").startswith("WEBVTT")


@pytest.mark.slow
def test_render_a_voice_track_from_media_and_library_with_options(video_avatar, root):
    manifest = json.loads((video_avatar / "avatar.json").read_text())
    audio = mediagen.make_audio(root / "voice.wav", seconds=6.0)
    out = root / "voice.mp4"
    status = main([
        "render", "--media", str(video_avatar / manifest["media"]), "--library",
        str(video_avatar / manifest["library"]), "--audio", str(audio), "-o", str(out),
        "--loop", "forward", "--disable", "1-2", "--poster", str(root / "voice-poster.jpg"),
    ])
    assert status == 0
    assert (root / "voice-poster.jpg").exists()
    assert abs(_video_seconds(out) - 6.0) < 0.1


@pytest.mark.slow
def test_render_a_photo_avatar(tmp_path):
    photo = mediagen.make_photo(tmp_path / "me.jpg", fmt="jpg")
    assert main(["prepare", str(photo), "-o", str(tmp_path / "photo")]) == 0
    out = tmp_path / "photo.mp4"
    status = main(["render", "--avatar", str(tmp_path / "photo"), "--text", "Hi, I am a photo.",
                   "-o", str(out)])
    assert status == 0
    assert _video_seconds(out) > 0.5


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "Give either --text or --audio"),
        (["--text", "hi", "--audio", "x.wav"], "Give either --text or --audio"),
        (["--text", "hello there", "--disable", "5-1"], "--disable range"),
        (["--text", "hello there", "--loop", "custom"], "--loop custom needs"),
    ],
)
def test_render_input_errors_exit_2_with_a_sentence(video_avatar, root, capsys, extra, message):
    out = root / "never.mp4"
    assert main(["render", "--avatar", str(video_avatar), "-o", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_render_refuses_a_folder_that_is_not_an_avatar(tmp_path, capsys):
    status = main(["render", "--avatar", str(tmp_path), "--text", "hello there",
                   "-o", str(tmp_path / "o.mp4")])
    assert status == 2
    assert "not a prepared avatar" in capsys.readouterr().err


@pytest.mark.slow
def test_render_refuses_a_silent_voice_track(video_avatar, root, capsys):
    silent = mediagen.make_audio(root / "silent.wav", seconds=3.0, silent=True)
    out = root / "silent.mp4"
    assert main(["render", "--avatar", str(video_avatar), "--audio", str(silent), "-o", str(out)]) == 2
    assert "silent" in capsys.readouterr().err
    assert not out.exists()


# -- bench -------------------------------------------------------------------------------


def _video_bytes(path) -> bytes:
    import av

    with av.open(str(path)) as container:
        return b"".join(bytes(packet) for packet in container.demux(container.streams.video[0]) if packet.size)


@pytest.mark.slow
def test_bench_smoke_run_writes_every_figure(tmp_path, capsys):
    """A 4-second version of `make bench` (the figures only mean something at 30 s)."""
    output = tmp_path / "bench.json"
    status = main(["bench", "--seconds", "4", "--repeat", "1", "-o", str(output),
                   "--workdir", str(tmp_path / "work")])
    assert status == 0
    printed = capsys.readouterr().out
    assert "render wall ÷ output duration" in printed
    result = json.loads(output.read_text())
    for name in ("render_realtime_factor", "render_vs_reencode", "prepare_realtime_factor",
                 "prepare_copy_realtime_factor", "prepare_vs_reencode", "preview_seconds",
                 "photo_render_realtime_factor"):
        assert result["figures"][name]["value"] > 0, name
    for phase in ("source", "prepare_copy", "source_reencode", "prepare", "render", "reencode"):
        assert result["phases"][phase]["peak_rss_mb"] > 50, phase
    # the two preparation figures measure the two paths: copied, and re-encoded
    work = tmp_path / "work"
    assert _video_bytes(work / "avatar" / "media.mp4") == _video_bytes(work / "source-720p.mp4")
    assert _video_bytes(work / "avatar-reencode" / "media.mp4") != _video_bytes(
        work / "source-720p-sparse-keyframes.mp4")
    assert 3.5 < result["phases"]["render"]["duration"] < 4.5
