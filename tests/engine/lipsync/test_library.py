"""The mouth library: what preparation measures in every frame, and whose face it follows."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from engine import media
from engine.face import FaceTracker, face_mesh, invert_transform
from engine.lipsync import LIBRARY_SUFFIX, Library, build_library
from engine.lipsync.library import KEPT_POSITION
from tests import mediagen
from tests.engine.lipsync.helpers import decoded_rgb

# Each builds or renders a real mouth library: the engine end to end.
pytestmark = pytest.mark.slow


def test_library_of_a_speaking_video(library, speaking):
    path, report = library
    assert path.suffix == LIBRARY_SUFFIX and path.stat().st_size < 2_000_000
    lib = Library.load(path)
    assert lib.frame_count == report.total_frames == 300
    assert report.usable_frames >= 290
    assert report.open_frames > 20 and report.closed_frames > 20
    assert not any("open-mouth" in w or "closed-mouth" in w for w in report.warnings)
    assert sum(report.viseme_coverage.values()) >= 250 and report.viseme_coverage["PP"] > 0
    assert report.head_motion["shift_range"] < 0.5  # the pan is a few pixels
    assert set(report.to_dict()) >= {"total_frames", "usable_frames", "viseme_coverage", "head_motion", "warnings"}
    # every frame's landmarks, taken back to the frame, sit where FaceMesh finds them
    to_frame = np.array([invert_transform(t) for t in lib.transform])
    nose_lip = [KEPT_POSITION[i] for i in (1, 13, 152)]
    placed = np.einsum("nij,nkj->nki", to_frame[:, :, :2], lib.points[:, nose_lip]) + to_frame[:, None, :, 2]
    for index, rgb in zip((0, 100, 200), decoded_rgb(speaking, (0, 100, 200))):
        found = face_mesh(rgb, static=True)[0][[1, 13, 152]]
        # tracked and single-image FaceMesh disagree by a few px, most on the chin (152)
        assert np.abs(placed[index] - found).max() < 8
    # the measured mouth opens and closes (the video's mouth moves with its speech)
    assert lib.state[:, 0].max() > 0.12 and lib.state[:, 0].min() < 0.03


def test_a_still_mouth_gets_a_warning_the_creator_can_act_on(root):
    still = mediagen.make_talking_video(root / "still.mp4", seconds=4.0)
    report = build_library(still, root / "still.npz")
    assert report.usable_frames >= 95
    assert "Few open-mouth frames: record yourself reading aloud for at least 30 s." in report.warnings


def test_the_target_stays_the_same_person_with_two_faces(root):
    video = mediagen.make_two_people_video(root / "two.mp4", seconds=4.0)
    frames = list(media.iter_video_frames(video))
    width = frames[0].shape[1]

    def sides(reference):
        tracker = FaceTracker(reference=reference)
        found = [tracker.track(frame) for frame in frames]
        tracker.close()
        assert all(points is not None for points in found)
        return np.array([points[:, 0].mean() < width / 2 for points in found])

    # No reference: the largest face of the first frame (left), even once the right one is larger.
    assert sides(None).all()
    # A reference photo of the other person (the mirror image): the right face, throughout.
    assert not sides(np.ascontiguousarray(data.astronaut()[:, ::-1])).any()
    # The library follows the same rule.
    build_library(video, root / "two.npz", reference=np.ascontiguousarray(data.astronaut()[:, ::-1]))
    lib = Library.load(root / "two.npz")
    centre_x = [invert_transform(t)[0, 2] for t in lib.transform]
    assert min(centre_x) > width / 2


def test_footage_whose_sound_is_music_is_lip_synced_by_the_speaker_independent_mouth(root, speaking, library):
    from engine.evaluation.driven import footage_with_sound

    _, own = library
    # her painted mouth moves with the footage's own speech: it is learnt from
    assert own.mouth_timing == "own speech" and own.own_speech_r >= 0.5
    assert not any("speaker-independent" in w for w in own.warnings)
    assert "weights" in Library.load(library[0]).model

    music = footage_with_sound(speaking, root / "speaking-music.mp4", "music")
    path = root / "speaking-music.npz"
    report = build_library(music, path)
    assert report.mouth_timing == "speaker-independent" and report.own_speech_r < 0.25
    assert any(w.startswith("The video's sound does not move with your mouth (music, or someone else speaking), "
                            "so lip sync uses the speaker-independent mouth") for w in report.warnings)
    assert report.to_dict()["mouth_timing"] == "speaker-independent"
    lib = Library.load(path)
    assert "weights" not in lib.model and (lib.visemes == -1).all()


def test_at_twice_the_size_the_landmarks_land_where_facemesh_finds_them(library, speaking):
    """A 4K render reads the master, twice the prepared media's size: the library's
    transforms are scaled to it (``Library.for_frame_size``), nothing else changes."""
    import cv2

    path, _ = library
    lib = Library.load(path)
    width, height = lib.frame_size
    big = lib.for_frame_size(2 * width, 2 * height)
    assert big.frame_size == (2 * width, 2 * height) and np.array_equal(big.points, lib.points)
    assert lib.for_frame_size(width, height) is lib
    to_frame = np.array([invert_transform(t) for t in big.transform])
    lips = [KEPT_POSITION[i] for i in (1, 13, 14, 61, 291)]
    for index, rgb in zip((50, 150), decoded_rgb(speaking, (50, 150))):
        large = cv2.resize(rgb, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
        found = face_mesh(large, static=True)[0][[1, 13, 14, 61, 291]]
        placed = to_frame[index, :, :2] @ lib.points[index, lips].T + to_frame[index, :, 2:]
        assert np.abs(placed.T - found).max() < 10  # px at twice the size (8 at the media's)


def test_the_builder_on_its_threads_tracks_every_frame_it_is_handed(speaking):
    """More frames than its queues hold, from another thread: ``submit`` waits for room
    instead of dropping or piling up frames, and every one is tracked, in order."""
    import itertools
    import threading

    from engine.lipsync import LibraryBuilder

    with media.VideoReader(speaking) as reader:
        frames = list(itertools.islice(reader.iter_sequential(), 30))
    with LibraryBuilder() as builder:
        builder.start_worker(depth=2)

        def feed():
            for index, frame in frames:
                builder.submit(index, frame)
            builder.join()

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        feeder.join(timeout=60)
        assert not feeder.is_alive() and len(builder.kept) == 30
        assert all(kept is not None for kept in builder.kept)


def test_the_report_says_when_the_footage_is_lip_synced_by_its_loudness_model():
    from engine.lipsync.build import _mouth_timing

    heard = object()  # any trajectory: the footage's own speech was heard
    full_wins = {"weights": np.zeros(3), "loudness_weights": np.zeros(2), "cv_r": 0.5, "loudness_cv_r": 0.3}
    loudness_wins = {**full_wins, "cv_r": 0.2}
    assert _mouth_timing(heard, full_wins) == "own speech"
    assert _mouth_timing(heard, loudness_wins) == "own speech, loudness"
    assert _mouth_timing(heard, {}) == "own speech"
    assert _mouth_timing(None, loudness_wins) == "speaker-independent"
