"""engine.media.colour: RGB → encoder frames, whole or only where they change."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from engine import media
from engine.media.colour import yuv_planes


@pytest.mark.parametrize("box", [(359, 3, 938, 717), (0, 0, 101, 55), (1200, 650, 1280, 720), (641, 361, 644, 364)])
def test_a_frame_converted_round_its_box_equals_the_whole_conversion(box):
    rng = np.random.default_rng(7)
    first = np.ascontiguousarray(np.resize(data.astronaut(), (720, 1280, 3)))
    convert = media.BoxedRgbToFrame(box, 1280, 720)
    assert all(np.array_equal(a, b) for a, b in zip(yuv_planes(convert(first)),
                                                   yuv_planes(media.rgb_to_frame(first))))
    x0, y0, x1, y1 = box
    for _ in range(2):
        later = first.copy()
        later[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
        boxed, whole = convert(later), media.rgb_to_frame(later)
        assert (boxed.colorspace, boxed.color_range) == (whole.colorspace, whole.color_range)
        assert all(np.array_equal(a, b) for a, b in zip(yuv_planes(boxed), yuv_planes(whole)))
