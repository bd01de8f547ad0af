"""engine.face.detection with the real MediaPipe models on scikit-image's pictures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from skimage import data

from engine.face import FRONTAL_MAX_YAW, detect_faces, estimate_yaw


def test_finds_the_astronauts_face():
    faces = detect_faces(data.astronaut())
    assert len(faces) == 1
    face = faces[0]
    # Her face spans roughly x 175–280, y 70–175 of the 512×512 picture.
    assert 0.30 < face.x < 0.38 and 0.10 < face.y < 0.20
    assert 0.17 < face.width < 0.24
    assert face.score > 0.8
    assert face.frontal and abs(face.yaw) < 15
    assert len(face.keypoints) == 6
    assert set(face.to_dict()) == {"x", "y", "width", "height", "score", "frontal", "yaw"}


def test_finds_no_face_in_a_cup_of_coffee():
    assert detect_faces(data.coffee()) == []


def test_finds_two_astronauts_side_by_side():
    faces = detect_faces(np.concatenate([data.astronaut(), data.astronaut()], axis=1))
    assert len(faces) == 2
    left, right = sorted(f.center[0] for f in faces)
    assert left < 0.5 < right


def test_finds_a_close_up_face_and_reports_it_big():
    close_up = np.ascontiguousarray(data.astronaut()[40:260, 130:330])
    faces = detect_faces(close_up)
    assert len(faces) == 1
    assert faces[0].width > 0.4


def test_finds_a_small_face_in_a_wide_frame_with_frame_relative_coordinates():
    frame = np.full((720, 1280, 3), 120, np.uint8)
    frame[208:720, 384:896] = data.astronaut()
    faces = detect_faces(frame)
    assert len(faces) == 1
    face = faces[0]
    # Same face as in the 512 picture, now offset by 384 px and measured against 1280 px.
    assert face.x == pytest.approx((384 + 0.339 * 512) / 1280, abs=0.02)
    assert face.width == pytest.approx(0.203 * 512 / 1280, abs=0.015)


def test_mirror_image_flips_the_yaw_sign_but_stays_frontal():
    left = detect_faces(data.astronaut())[0]
    right = detect_faces(np.ascontiguousarray(data.astronaut()[:, ::-1]))[0]
    assert right.frontal
    assert abs(left.yaw + right.yaw) < 10


def test_estimate_yaw_from_keypoints():
    eyes_mouth = [(0.45, 0.4), (0.55, 0.4), None, (0.5, 0.6)]

    def keypoints(nose_x):
        return [eyes_mouth[0], eyes_mouth[1], (nose_x, 0.5), eyes_mouth[3], (0.3, 0.45), (0.7, 0.45)]

    assert estimate_yaw(keypoints(0.5)) == pytest.approx(0.0)
    assert estimate_yaw(keypoints(0.7)) == pytest.approx(90.0)
    assert estimate_yaw(keypoints(0.3)) == pytest.approx(-90.0)
    assert abs(estimate_yaw(keypoints(0.62))) > FRONTAL_MAX_YAW  # nose most of the way to one ear


def test_shared_detector_is_safe_across_threads():
    picture = data.astronaut()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: detect_faces(picture), range(12)))
    widths = {round(faces[0].width, 4) for faces in results}
    assert all(len(faces) == 1 for faces in results)
    assert len(widths) == 1


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError):
        detect_faces(np.zeros((10, 10), np.uint8))


def test_finds_a_face_too_small_for_the_whole_frame_pass():
    far = np.full((1200, 1600, 3), 128, np.uint8)
    far[688:1200, 544:1056] = data.astronaut()
    faces = detect_faces(far)
    assert len(faces) == 1
    assert faces[0].width == pytest.approx(0.203 * 512 / 1600, abs=0.01)
    assert faces[0].x == pytest.approx((544 + 0.339 * 512) / 1600, abs=0.01)
