"""engine.face.tracking: following one person, from RGB or YUV frames."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from engine import face as face_module
from engine.errors import InputRejected


def test_tracker_follows_the_face_from_rgb_and_from_yuv_alike():
    import av

    frame = np.ascontiguousarray(data.astronaut())
    yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
    with face_module.FaceTracker() as from_rgb, face_module.FaceTracker() as from_yuv:
        for _ in range(3):
            a = from_rgb.track(frame)
            b = from_yuv.track_regions(face_module.YuvRegions(yuv))
    assert a.shape == (478, 2) and b.shape == (478, 3)
    assert np.abs(a - b[:, :2]).mean() < 2.0
    with face_module.FaceTracker() as tracker:
        assert tracker.track(data.coffee()) is None


def test_a_reference_photo_without_a_face_is_refused():
    with pytest.raises(InputRejected) as caught:
        face_module.FaceTracker(reference=data.coffee())
    assert caught.value.code == "reference_no_face"
