"""engine.photo.animate: the astronaut's photo speaking a trajectory, measured on its frames."""

from __future__ import annotations

import numpy as np
import pytest

from engine import face
from engine.evaluation.metrics import pearson
from engine.face import LIP_OUTER
from engine.photo import Animator, Life, animate

from .conftest import FPS, speech_like, viseme_trajectory


def still_life(n: int, eyes=None) -> Life:
    zeros = np.zeros(n)
    return Life(eyes=zeros if eyes is None else eyes, pitch=zeros, yaw=zeros, roll=zeros, blinks=[])


@pytest.fixture(scope="module")
def spoken(rig):
    """Frames of the astronaut speaking, with no blinks or head motion, and the animator."""
    trajectory = viseme_trajectory()
    n = trajectory.frame_count
    animator = Animator(rig)
    from engine.photo import trajectory_frame

    frames, points, openings = [], [], []
    for k in range(n):
        frames.append(animator.frame(trajectory_frame(trajectory, k / FPS)))
        points.append(animator.last_points.copy())
        openings.append(animator.last_opening)
    return trajectory, frames, points, openings


@pytest.mark.slow
def test_the_mouth_opening_measured_on_the_frames_follows_the_jaw(spoken):
    trajectory, frames, _, _ = spoken
    tracker = face.FaceTracker()
    try:
        measured = [tracker.track(frame) for frame in frames]
    finally:
        tracker.close()
    aperture = np.array([np.nan if lm is None else face.mouth_aperture(lm) for lm in measured])
    assert np.isfinite(aperture).mean() > 0.95
    assert pearson(aperture, trajectory.jaw) >= 0.8
    # It really opens: "aa" frames are wide open, rest frames closed.
    jaw = np.asarray(trajectory.jaw)
    assert np.nanmedian(aperture[jaw > 0.8]) > 0.1
    assert np.nanmedian(aperture[jaw < 0.02]) < 0.04


def test_above_the_nose_nothing_moves_without_blinks_or_head_motion(rig, spoken):
    _, frames, _, _ = spoken
    nose_top = int(rig.landmarks[[6, 197], 1].min())
    for frame in frames:
        assert np.abs(frame[:nose_top].astype(int) - rig.rgb[:nose_top]).max() <= 1


def test_no_hole_or_seam_round_the_mouth(rig, spoken):
    """No pixel round the lips darker than the photo's darkest lip pixel, except inside the
    opening drawn in that frame; and where the mouth is open, the inside is shaded, not flat."""
    import cv2

    _, frames, points, openings = spoken
    io = rig.io
    opened = 0
    for frame, dst, opening in zip(frames, points, openings):
        region = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(region, [np.round(dst[LIP_OUTER]).astype(np.int32)], 1)
        region = cv2.dilate(region, np.ones((int(0.15 * io) | 1,) * 2, np.uint8)).astype(bool)
        inside = np.zeros(frame.shape[:2], bool)
        if opening is not None:
            x, y, alpha = opening
            inside[y:y + alpha.shape[0], x:x + alpha.shape[1]] = alpha > 0.004
            inside = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        grey = frame.astype(np.float32).mean(axis=2)
        outside = region & ~inside
        assert grey[outside].min() >= rig.darkest_lip - 1.0
        if opening is not None and (opening[2] > 0.99).sum() > 0.02 * io * io:
            x, y, alpha = opening
            cavity = grey[y:y + alpha.shape[0], x:x + alpha.shape[1]][alpha > 0.99]
            assert cavity.std() > 6.0  # shaded: teeth, tongue, depth
            assert np.percentile(cavity, 10) < np.median(grey[region & ~inside])  # darker than the lips round it
            opened += 1
    assert opened >= 10


def test_blinks_close_the_eyes_and_change_nothing_else_above_the_nose(rig):
    trajectory = viseme_trajectory(("sil",) * 3)
    n = trajectory.frame_count
    eyes = np.zeros(n)
    eyes[5] = 1.0
    frames = list(animate(rig, trajectory, speech_like(trajectory), 16000, FPS, n, life=still_life(n, eyes)))
    lm = rig.landmarks[:, :2]
    nose_top = int(lm[[6, 197], 1].min())
    changed = np.abs(frames[5][:nose_top].astype(int) - rig.rgb[:nose_top]).max(axis=2) > 2
    ys, xs = np.nonzero(changed)
    assert len(ys) > 50
    eye_box_x = lm[[33, 133, 362, 263], 0]
    assert xs.min() >= eye_box_x.min() - 2 and xs.max() <= eye_box_x.max() + 2
    # The eye's dark iris is covered by the lid.
    iris = lm[468].round().astype(int)
    assert frames[5][iris[1], iris[0]].mean() > rig.rgb[iris[1], iris[0]].mean() + 20
    assert np.abs(frames[0][:nose_top].astype(int) - rig.rgb[:nose_top]).max() <= 1


def test_the_head_moves_as_a_layer_and_the_frame_edges_stay(rig):
    animator = Animator(rig)
    rest = {"jaw": 0.0, "width": 0.5, "round": 0.0, "closure": 1.0, "tuck": 0.0, "teeth": 0.0, "viseme": "sil"}
    nod = animator.frame(rest, pitch=3.0)
    still = animator.frame(rest)
    assert np.abs(nod.astype(int) - still).max() > 30  # the face moved
    x0, y0, x1, y1 = rig.head_box()
    edge = np.ones(nod.shape[:2], bool)
    edge[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = False  # outside the animated box, and its outermost pixels
    assert np.abs(nod[edge].astype(int) - rig.rgb[edge]).max() <= 2
    # A nod of 3° moves the nose down by about 1.6 io × sin 3°, not more.
    eye_row = int(rig.landmarks[1, 1])
    column = int(rig.landmarks[1, 0])
    profile_still = still[eye_row - 30:eye_row + 30, column].astype(float).mean(axis=1)
    profile_nod = nod[eye_row - 30:eye_row + 30, column].astype(float).mean(axis=1)
    shifts = [np.abs(np.roll(profile_still, s)[10:-10] - profile_nod[10:-10]).mean() for s in range(0, 12)]
    assert 1 <= int(np.argmin(shifts)) <= int(np.ceil(1.6 * rig.io * np.sin(np.deg2rad(3.0)))) + 1


def test_the_background_stays_still_while_the_head_nods(rig):
    import cv2

    animator = Animator(rig)
    rest = {"jaw": 0.6, "width": 0.5, "round": 0.0, "closure": 0.0, "tuck": 0.0, "teeth": 0.0, "viseme": "aa"}
    nod = animator.frame(rest, pitch=3.0, yaw=1.0, roll=1.0)
    x0, y0, x1, y1 = rig.head_box()
    near_person = cv2.dilate((rig.person_mask > 0).astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    background = np.zeros(near_person.shape, bool)
    background[y0:y1, x0:x1] = ~near_person[y0:y1, x0:x1]
    assert background.sum() > 1000  # the astronaut's photo has sky and flag beside the head
    assert np.abs(nod[background].astype(int) - rig.rgb[background]).max() <= 1


def test_frames_are_streamed_and_deterministic(rig):
    trajectory = viseme_trajectory(("sil", "aa", "sil"), hold=3)
    samples = speech_like(trajectory)
    stream = animate(rig, trajectory, samples, 16000, FPS, trajectory.frame_count)
    first = next(stream)
    assert first.shape == rig.rgb.shape and first.dtype == np.uint8
    again = list(animate(rig, trajectory, samples, 16000, FPS, trajectory.frame_count))
    assert np.array_equal(first, again[0])
    assert len(again) == trajectory.frame_count
    # Any frame is the same whichever others the animator made before it (renders share
    # the frames out between two animators).
    odd = list(animate(rig, trajectory, samples, 16000, FPS, trajectory.frame_count,
                       frames=range(1, trajectory.frame_count, 2)))
    assert len(odd) == trajectory.frame_count // 2
    assert all(np.array_equal(frame, again[k]) for frame, k in zip(odd, range(1, trajectory.frame_count, 2)))


def test_a_colour_background_replaces_what_is_behind_the_person(rig):
    trajectory = viseme_trajectory(("sil",), hold=2)
    frame = next(animate(rig, trajectory, speech_like(trajectory), 16000, FPS, 1, background=(0, 177, 64)))
    assert np.abs(frame[5, 5].astype(int) - (0, 177, 64)).max() <= 3  # the corner is sky in the photo
    nose = rig.landmarks[1, :2].round().astype(int)
    assert np.abs(frame[nose[1], nose[0]].astype(int) - rig.rgb[nose[1], nose[0]]).max() <= 3
