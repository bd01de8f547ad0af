"""engine.photo.rig: what a photo gives the animation, and the photos it refuses."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine.errors import InputRejected
from engine.face import LIP_OUTER
from engine.photo import MIN_FACE_PX, check_photo

from .conftest import portrait


def refusal(rgb) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        check_photo(rgb)
    error = caught.value
    assert error.field == "source" and str(error).endswith(".")
    return error


def test_a_frontal_portrait_is_accepted_and_measured(rig):
    assert rig.face_height >= MIN_FACE_PX
    assert rig.photo_gap > 3  # she smiles with her teeth showing
    assert rig.photo_teeth is not None
    assert rig.lip_colour[0] > rig.lip_colour[2]  # lips are red
    lower = rig.mesh.weights.jaw
    assert lower[152] > 0.7 and lower[14] > 0.7  # chin and lower lip follow the jaw
    assert abs(lower[13]) < 1e-6 and abs(lower[1]) < 1e-6  # upper lip and nose don't


def test_a_covered_mouth_is_refused():
    import cv2

    rgb = portrait()
    landmarks = check_photo(rgb)
    lips = landmarks[LIP_OUTER, :2]
    centre, size = lips.mean(axis=0), np.ptp(lips, axis=0)
    skin = np.median(rgb[int(landmarks[50, 1]) - 3:int(landmarks[50, 1]) + 3,
                         int(landmarks[50, 0]) - 3:int(landmarks[50, 0]) + 3].reshape(-1, 3), axis=0)
    covered = rgb.copy()
    cv2.ellipse(covered, tuple(int(v) for v in centre), (int(size[0] * 0.75), int(size[1] * 1.1)), 0, 0, 360,
                tuple(int(v) for v in skin), -1)
    error = refusal(covered)
    assert error.code == "photo_mouth_covered" and "covers the mouth" in str(error)


def test_a_face_turned_away_is_refused():
    """Grace Hopper's portrait (shipped with matplotlib), her face squeezed to one side of the
    nose the way a turned head foreshortens it."""
    import cv2
    import matplotlib
    from PIL import Image

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    rgb = np.asarray(Image.open(path).convert("RGB"))
    nose_x = check_photo(rgb)[1, 0]
    h, w = rgb.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    source_x = np.where(xs > nose_x, nose_x + (xs - nose_x) / 0.3, xs).astype(np.float32)
    turned = cv2.remap(rgb, np.tile(source_x, (h, 1)), np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w)),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = refusal(turned)
    assert error.code == "photo_profile" and "looking at the camera" in str(error)


def test_two_people_are_refused():
    rgb = portrait()
    error = refusal(np.ascontiguousarray(np.hstack([rgb, rgb[:, ::-1]])))
    assert error.code == "photo_multiple_faces" and "2 faces" in str(error)


def test_a_small_face_is_refused_with_its_size():
    import cv2
    from skimage import data

    small = cv2.resize(data.astronaut(), (300, 300), interpolation=cv2.INTER_AREA)  # her face ~62 px tall
    error = refusal(small)
    assert error.code == "photo_face_too_small" and f"at least {MIN_FACE_PX}" in str(error)


def test_a_photo_without_a_face_is_refused():
    from skimage import data

    error = refusal(np.ascontiguousarray(data.coffee()))
    assert error.code == "photo_no_face"


def test_the_background_plate_keeps_none_of_the_person(rig):
    """Only where the person mask is zero is the plate the photo; everywhere the person shows,
    their soft edge included, it is filled from the background (the plate that kept a faint
    fringe of hair showed it as a ghost outline when the head moved)."""
    from engine.photo.rig import mask_8bit

    mask = mask_8bit(rig.person_mask)
    outside = mask == 0
    assert np.array_equal(rig.plate[outside], rig.rgb[outside])
    fringe = (mask > 0) & (mask < 51)  # the soft edge under a fifth of the person
    assert fringe.sum() > 500
    kept = np.all(rig.plate[fringe] == rig.rgb[fringe], axis=1)
    assert kept.mean() < 0.05
