"""What a render hands the creator: size, shape, frame rate, quality, burned-in captions and
the 3-second preview, read back from the encoded file with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data

from engine import burnin, media, pipeline
from engine.errors import InputRejected
from engine.output import OutputFormat
from engine.pipeline import RenderRequest, prepare_avatar, render
from tests import mediagen

TEXT = "Good morning. Today we are going to look at three ideas, one after the other."


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("render-output")


@pytest.fixture(scope="module")
def photo_avatar(root) -> pipeline.PreparedAvatar:
    source = mediagen.make_photo(root / "me.jpg", fmt="jpg")
    return prepare_avatar(kind="photo", source=source, workdir=root / "photo-avatar")


def _render(root, avatar, name, **options):
    out = root / f"{name}.mp4"
    request = RenderRequest(avatar_kind="photo", avatar_media=avatar.media_path, output=out,
                            poster=root / f"{name}.jpg", text=TEXT, **options)
    return render(request)


def _stream(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, float(stream.average_rate), container.duration / 1e6


def test_each_size_shape_and_rate_reaches_the_file(root, photo_avatar):
    source_w, source_h = photo_avatar.width, photo_avatar.height
    for name, fmt, fps in (
        ("square", OutputFormat(aspect="1:1", resolution=480), None),
        ("vertical", OutputFormat(aspect="9:16"), 30),
    ):
        result = render(RenderRequest(
            avatar_kind="photo", avatar_media=photo_avatar.media_path, output=root / f"{name}.mp4",
            poster=root / f"{name}.jpg", text="Hello there.", output_format=fmt, fps=fps,
        ))
        width, height, rate, _ = _stream(result.video_path)
        assert (width, height) == (result.width, result.height)
        if name == "square":
            assert (width, height) == (480, 480)
            assert rate == pytest.approx(25.0)
        else:
            assert height == source_h // 2 * 2 and width == pytest.approx(source_h * 9 / 16, abs=2)
            assert rate == pytest.approx(30.0)
        poster = media.load_image_rgb(result.poster_path)
        assert poster.shape[:2] == (height, width)
    assert source_w > 0


def test_it_refuses_to_upscale_unless_asked(root, photo_avatar):
    with pytest.raises(InputRejected) as refused:
        _render(root, photo_avatar, "too-big", output_format=OutputFormat(resolution=2160))
    assert refused.value.field == "resolution"
    assert not (root / "too-big.mp4").exists()


def test_the_preview_is_the_first_three_seconds(root, photo_avatar):
    full = _render(root, photo_avatar, "full")
    preview = _render(root, photo_avatar, "preview", preview_seconds=pipeline.PREVIEW_SECONDS)
    assert full.duration > 4.0
    assert preview.duration == pytest.approx(3.0, abs=0.1)
    # its captions stop where it does
    assert preview.vtt_path is not None
    assert "00:00:03.0" in preview.vtt_path.read_text() or "00:00:02." in preview.vtt_path.read_text()
    assert "00:00:04" not in preview.vtt_path.read_text()


def test_burned_captions_show_while_words_are_spoken(root, photo_avatar):
    plain = _render(root, photo_avatar, "plain")
    burned = _render(root, photo_avatar, "burned", caption_style=burnin.caption_style("bottom", "large", "box"))
    with av.open(str(plain.video_path)) as a, av.open(str(burned.video_path)) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0)))
    height = plain.height
    differences = []
    for plain_frame, burned_frame in pairs[::5]:
        x = plain_frame.to_ndarray(format="rgb24").astype(int)
        y = burned_frame.to_ndarray(format="rgb24").astype(int)
        changed = np.abs(x - y).max(axis=2) > 40
        differences.append(changed)
        # only in the bottom band (elsewhere the two encodes differ by a stray pixel at most)
        assert changed[: int(height * 0.6)].mean() < 0.001
    assert sum(d.any() for d in differences) > len(differences) // 2
