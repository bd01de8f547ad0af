"""engine.face with the real MediaPipe models on scikit-image's pictures."""

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


# -- FaceMesh, tracking, mouth measures ---------------------------------------------------------

from PIL import Image  # noqa: E402

from engine import face as face_module  # noqa: E402
from engine.errors import InputRejected  # noqa: E402


def test_face_mesh_gives_478_points_per_face_largest_first():
    small = np.asarray(Image.fromarray(data.astronaut()).resize((300, 300)))
    pair = np.full((512, 820, 3), 128, np.uint8)
    pair[:, :512] = data.astronaut()
    pair[212:, 520:820] = small
    faces = face_module.face_mesh(pair, static=True)
    assert len(faces) == 2
    assert all(f.shape == (478, 2) and f.dtype == np.float32 for f in faces)
    assert faces[0][:, 0].mean() < 512 < faces[1][:, 0].mean()  # the bigger (left) one first
    assert face_module.face_mesh(data.coffee(), static=True) == []
    assert len(face_module.LIP_INDICES) == 40 and len(set(face_module.LIP_INDICES.tolist())) == 40


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
