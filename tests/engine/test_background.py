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
