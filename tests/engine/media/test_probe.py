"""engine.media.probing: the guarded probe describes files and refuses hostile ones."""

from __future__ import annotations

import time

import pytest

from engine import media
from engine.errors import InputRejected


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
