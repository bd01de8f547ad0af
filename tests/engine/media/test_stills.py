"""engine.media.stills: the quick preview and the poster of a creator's video."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from engine import media


def test_preview_and_poster(files, tmp_path):
    started = time.monotonic()
    info = media.write_preview(files["mp4"], tmp_path / "preview.mp4", 3.0)
    assert time.monotonic() - started < 5.0
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert info.has_audio
    poster = media.write_poster(files["mp4"], tmp_path / "poster.jpg")
    assert media.sniff_type(poster) == "image/jpeg"
    with Image.open(poster) as image:
        assert image.size == (640, 480)
        # The astronaut's orange suit sits in the lower middle: red well above blue.
        r, g, b = np.asarray(image.convert("RGB"))[380:440, 250:330].reshape(-1, 3).mean(axis=0)
        assert r > b + 60
