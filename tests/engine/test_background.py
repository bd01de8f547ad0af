"""engine.background: replacing what is behind the person in a frame."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data

from engine.background import BackgroundCompositor, parse_background


def test_parse_background():
    assert parse_background(None) is None and parse_background("") is None
    assert parse_background((16, 300, -2)) == (16, 255, 0)
    assert parse_background("#10ff20") == (16, 255, 32)
    assert str(parse_background("backdrop.png")) == "backdrop.png"


def test_background_compositor(tmp_path):
    picture = data.astronaut()
    assert BackgroundCompositor(None, (512, 512)).apply(picture) is picture
    backdrop = tmp_path / "backdrop.png"
    Image.fromarray(data.coffee()).save(backdrop)
    compositor = BackgroundCompositor(backdrop, (512, 512))
    out = compositor.apply(picture)
    expected_corner = np.asarray(Image.fromarray(data.coffee()).resize((768, 512)))[:, 128:640][:40, -40:]
    assert np.abs(out[:40, -40:].astype(int) - expected_corner).mean() < 10  # sky → coffee table
    assert np.abs(out[90:160, 190:260].astype(int) - picture[90:160, 190:260]).mean() < 4  # face kept
    # Temporal smoothing: the same frame again gives (almost) the same mask.
    again = compositor.apply(picture)
    assert np.abs(again.astype(int) - out).mean() < 1.0
    compositor.close()


def test_a_background_declaring_a_huge_picture_is_refused_by_name_before_decoding(tmp_path):
    from engine.errors import InputRejected
    from tests.mediagen import make_declared_png

    huge = make_declared_png(tmp_path / "huge.png", width=30000, height=30000)
    try:
        BackgroundCompositor(huge, (640, 360))
    except InputRejected as problem:
        assert str(problem).startswith("The background image is 30000 × 30000 pixels")
        assert problem.field == "background_image"
    else:
        raise AssertionError("a 30000 × 30000 background was accepted")


def test_an_unreadable_background_is_named_as_the_background(tmp_path):
    from engine.errors import InputRejected

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    try:
        BackgroundCompositor(broken, (640, 360))
    except InputRejected as problem:
        assert "background image can't be read" in str(problem)
    else:
        raise AssertionError("a broken background was accepted")
