"""Lip-synced frames: closed lips for every p/b/m, untouched intervals left as decoded, and no
output frame showing the footage's own mouth where it could not be replaced."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import media
from engine.face import FaceTracker, apply_transform, invert_transform, mouth_aperture
from engine.lipsync import Library, build_library, showable_frames, synthesize_frames
from engine.lipsync.library import K_OUTER
from engine.timeline import background_indices
from tests import mediagen
from tests.engine.lipsync.helpers import NEW_SCRIPT, PBM_SCRIPT, decoded_rgb, trajectory_for

# Each builds or renders a real mouth library: the engine end to end.
pytestmark = pytest.mark.slow


def test_every_p_b_m_gets_a_closed_mouth(library, speaking):
    path, _ = library
    trajectory = trajectory_for(PBM_SCRIPT)
    n = trajectory.frame_count
    backgrounds = list(background_indices(300, n, loop_mode="reverse", fps=25))
    tracker = FaceTracker()
    apertures = []
    for rendered in synthesize_frames(media=speaking, library=path, trajectory=trajectory,
                                      background_indices=backgrounds):
        assert rendered.touched
        apertures.append(mouth_aperture(tracker.track(rendered.rgb)))
    tracker.close()
    apertures = np.array(apertures)
    assert len(apertures) == n
    times = np.arange(n) / trajectory.fps
    bilabials = [p for p in trajectory.phonemes if p.phoneme in ("p", "b", "m")]
    assert len(bilabials) >= 12
    for phone in bilabials:
        window = (times >= phone.start - 0.04) & (times <= phone.end + 0.04)
        assert apertures[window].min() < 0.04, f"{phone} not closed: {apertures[window].round(3)}"
    # … and the mouth does open between them
    assert np.percentile(apertures, 90) > 0.08


COVERED = range(40, 60)  # a dark rectangle over the mouth (1.6–2.4 s)
FACELESS = range(100, 120)  # no face at all: the backdrop alone (4.0–4.8 s)


@pytest.fixture(scope="module")
def interrupted(root, speaking, library):
    """The speaking video (her head moving) with the mouth covered for a run of frames and
    the face gone for another, and its library."""
    reference = Library.load(library[0])
    patched = root / "interrupted.mp4"
    backdrop = mediagen._backdrop(640, 480)
    with media.VideoReader(speaking) as reader, media.VideoWriter(patched, width=640, height=480, fps=25) as writer:
        for index, frame in reader.iter_sequential():
            rgb = reader.rgb(frame).copy()
            if index in COVERED:
                lips = apply_transform(invert_transform(reference.transform[index]), reference.points[index][K_OUTER])
                (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
                w, h = x1 - x0, y1 - y0
                cv2.rectangle(rgb, (int(x0 - 0.3 * w), int(y0 - 0.6 * h)), (int(x1 + 0.3 * w), int(y1 + 0.8 * h)),
                              (60, 60, 70), -1)
            writer.write(backdrop if index in FACELESS else rgb)
    path = root / "interrupted.npz"
    build_library(patched, path)
    return patched, path


def test_disabled_intervals_are_left_as_decoded_and_faceless_frames_drawn_on_the_nearest_face(interrupted):
    # Asked to draw on frames without a face, lip sync draws on the nearest frame with one: an
    # output frame never shows the footage's own mouth moving to other words. Only the
    # creator's untouched intervals keep it, exactly as decoded.
    patched, library = interrupted
    lib = Library.load(library)
    assert not lib.ok[FACELESS.start:FACELESS.stop].any() and lib.ok[:35].all()

    trajectory = trajectory_for(NEW_SCRIPT)
    n = min(trajectory.frame_count, 200)
    backgrounds = list(range(n))
    intervals = [(1.0, 1.4), (6.0, 6.2)]  # seconds of the footage: frames 25–35 and 150–155
    rendered = list(synthesize_frames(media=patched, library=library, trajectory=trajectory,
                                      background_indices=backgrounds, disable_intervals=intervals))
    assert len(rendered) == n
    untouched = set(range(25, 36)) | set(range(150, 156))
    faces = np.flatnonzero(lib.ok)
    decoded = decoded_rgb(patched, [frame.background_index for frame in rendered])
    for frame, original in zip(rendered, decoded):
        if frame.index in untouched:
            assert not frame.touched and frame.mouth_mask is None and frame.background_index == frame.index
            assert frame.rgb.tobytes() == original.tobytes()
            continue
        assert frame.touched
        if lib.ok[frame.index]:
            assert frame.background_index == frame.index
        else:  # the faceless run (or a frame the tracker lost): the nearest frame with a face
            assert frame.background_index == faces[np.argmin(np.abs(faces - frame.index))]
            assert abs(frame.background_index - frame.index) <= 10
        mask = frame.mouth_mask
        assert mask.shape == original.shape[:2] and 0.0 <= mask.min() and mask.max() <= 1.0
        # Outside the mask the picture is the background frame's (the same YUV samples);
        # within a few pixels of its edge, 4:2:0 chroma shared with blended pixels differs.
        outside = ~cv2.dilate((mask > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert np.abs(frame.rgb[outside].astype(int) - original[outside]).max() <= 3


def test_every_output_frame_shows_a_synced_mouth_where_the_footage_mouth_is_unusable(interrupted):
    patched, library = interrupted
    lib = Library.load(library)
    trajectory = trajectory_for(NEW_SCRIPT)
    n = trajectory.frame_count
    intervals = [(5.0, 5.2)]  # frames 125–130
    unusable = ~showable_frames(lib, intervals)
    assert unusable[FACELESS.start:FACELESS.stop].all() and not unusable[125:131].any()
    # Without the library's word the loop would show the faceless run (and whatever else is
    # unusable): the frames a creator would see with the footage's mouth, out of sync.
    segment = {"loop_mode": "custom", "fps": 25, "start": 1.2, "end": 8.0}  # frames 30–199
    plain = list(background_indices(lib.frame_count, n, **segment))
    assert unusable[plain].sum() >= len(FACELESS)

    order = list(background_indices(lib.frame_count, n, **segment, shown=showable_frames(library, intervals)))
    assert not unusable[order].any()
    # the covered run is found (its mouth would move under the cover) and skipped like the faceless one
    assert unusable[COVERED.start:COVERED.stop].all() and not set(order) & set(COVERED)
    assert set(order) >= set(range(125, 131))
    unsynced = []
    for frame in synthesize_frames(media=patched, library=library, trajectory=trajectory,
                                   background_indices=order, disable_intervals=intervals):
        in_interval = 125 <= frame.background_index <= 130
        if not frame.touched and not in_interval:
            unsynced.append(frame.index)
    assert unsynced == []
