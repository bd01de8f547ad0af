"""engine.face.landmarks: mouth and eye measures, similarity transforms."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from engine import face as face_module


def test_mouth_aperture_and_inter_ocular():
    from tests.mediagen import animate_mouth

    closed = face_module.face_mesh(animate_mouth(data.astronaut(), jaw=0.0, closure=1.0), static=True)[0]
    wide = face_module.face_mesh(animate_mouth(data.astronaut(), jaw=0.9), static=True)[0]
    assert face_module.mouth_aperture(closed) < 0.03 < 0.15 < face_module.mouth_aperture(wide)
    # her outer eye corners are ~60 px apart in the 512-pixel picture
    assert 50 < face_module.inter_ocular(closed) < 70
    shifted = closed * 2 + 10
    assert face_module.mouth_aperture(shifted) == pytest.approx(face_module.mouth_aperture(closed), rel=1e-5)


def test_similarity_transform_round_trip():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 100, (20, 2)).astype(np.float32)
    angle, scale = 0.3, 1.7
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ rotation.T + (5, -8)
    m = face_module.similarity_transform(points, moved)
    assert np.abs(face_module.apply_transform(m, points) - moved).max() < 1e-3
    back = face_module.apply_transform(face_module.invert_transform(m), moved)
    assert np.abs(back - points).max() < 1e-3
