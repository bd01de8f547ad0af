"""Lip-synced frames: closed lips for every p/b/m, and untouched frames left as decoded."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import media
from engine.face import FaceTracker, mouth_aperture
from engine.lipsync import Library, build_library, synthesize_frames
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


def test_disabled_intervals_and_faceless_frames_are_left_exactly_as_decoded(root, speaking):
    # The speaking video with no face at all from 4.0 s to 4.8 s (frames 100–119).
    patched = root / "faceless.mp4"
    backdrop = mediagen._backdrop(640, 480)
    with media.VideoReader(speaking) as reader, media.VideoWriter(patched, width=640, height=480, fps=25) as writer:
        for index, frame in reader.iter_sequential():
            writer.write(backdrop if 100 <= index < 120 else reader.rgb(frame))
    library = root / "faceless.npz"
    build_library(patched, library)
    lib = Library.load(library)
    assert not lib.ok[100:120].any() and lib.ok[:95].all()

    trajectory = trajectory_for(NEW_SCRIPT)
    n = min(trajectory.frame_count, 200)
    backgrounds = list(range(n))
    intervals = [(1.0, 1.4), (6.0, 6.2)]  # seconds of the footage: frames 25–35 and 150–155
    rendered = list(synthesize_frames(media=patched, library=library, trajectory=trajectory,
                                      background_indices=backgrounds, disable_intervals=intervals))
    decoded = decoded_rgb(patched, backgrounds[: len(rendered)])
    untouched = set(range(25, 36)) | set(range(100, 120)) | set(range(150, 156))
    for frame, original in zip(rendered, decoded):
        if frame.index in untouched:
            assert not frame.touched and frame.mouth_mask is None
            assert frame.rgb.tobytes() == original.tobytes()
        else:
            assert frame.touched
            mask = frame.mouth_mask
            assert mask.shape == original.shape[:2] and 0.0 <= mask.min() and mask.max() <= 1.0
            # Outside the mask the picture is the background frame's (the same YUV samples);
            # within a few pixels of its edge, 4:2:0 chroma shared with blended pixels differs.
            outside = ~cv2.dilate((mask > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
            assert np.abs(frame.rgb[outside].astype(int) - original[outside]).max() <= 3
