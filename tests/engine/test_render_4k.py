"""4K: a 4K upload is prepared at 1080p (tracking and everyday renders stay fast) with its
full-size master beside; a render asking for 4K reads the master and gets 2160 lines, read
back with PyAV; 1080p stays the default path and never opens the master."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine import pipeline
from engine.errors import InputRejected
from engine.output import OutputFormat
from tests import mediagen

TEXT = "Hello there, this is a test."


@pytest.fixture(scope="module")
def avatar(tmp_path_factory) -> pipeline.PreparedAvatar:
    root = tmp_path_factory.mktemp("uhd")
    source = mediagen.make_speaking_video(root / "uhd.mp4", seconds=2.0, size=(3840, 2160))
    return pipeline.prepare_avatar(kind="video", source=source, workdir=root / "avatar")


def _stream(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, sum(1 for p in container.demux(stream) if p.size)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _render(avatar, out: Path, fmt: OutputFormat, master: Path | None):
    return pipeline.render(pipeline.RenderRequest(
        avatar_kind="video", avatar_media=avatar.media_path, avatar_master=master, library=avatar.library_path,
        output=out, poster=out.with_suffix(".jpg"), text=TEXT, output_format=fmt,
    ))


@pytest.mark.slow
def test_a_4k_source_renders_at_4k_when_chosen_and_at_1080p_otherwise(avatar, tmp_path):
    assert (avatar.width, avatar.height) == (1920, 1080)
    assert (avatar.master_width, avatar.master_height) == (3840, 2160)
    assert _stream(avatar.master_path)[2] == _stream(avatar.media_path)[2] == avatar.frame_count

    uhd = _render(avatar, tmp_path / "uhd.mp4", OutputFormat(resolution=2160), avatar.master_path)
    width, height, _ = _stream(uhd.video_path)
    assert min(width, height) == 2160 and (width, height) == (uhd.width, uhd.height) == (3840, 2160)

    # The default and 1080p never read the master: a missing one does not matter to them.
    missing = tmp_path / "no-master.mp4"
    default = _render(avatar, tmp_path / "default.mp4", OutputFormat(), missing)
    full_hd = _render(avatar, tmp_path / "1080.mp4", OutputFormat(resolution=1080), missing)
    assert _stream(default.video_path)[:2] == _stream(full_hd.video_path)[:2] == (1920, 1080)
    assert not pipeline.uses_master(OutputFormat(resolution=1080), 1920, 1080)

    # The new mouth sits where it sits at 1080p: the library's landmarks, measured on the
    # 1080p media, are scaled to the master (unscaled, the 4K frame differs by ~170 levels).
    small, large = _frames(default.video_path), _frames(uhd.video_path)
    assert len(small) == len(large)
    for a, b in zip(small[::5], large[::5]):
        shrunk = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
        local = cv2.blur(np.abs(shrunk - a.astype(np.float32)).mean(axis=2), (9, 9))
        assert local.max() < 20


@pytest.mark.slow
def test_4k_from_the_1080p_media_alone_is_still_refused_as_an_upscale(avatar, tmp_path):
    with pytest.raises(InputRejected) as refused:
        _render(avatar, tmp_path / "no.mp4", OutputFormat(resolution=2160), None)
    assert refused.value.field == "resolution"
