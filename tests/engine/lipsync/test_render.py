"""Lip sync through the whole pipeline: prepared as the studio prepares avatars, then rendered."""

from __future__ import annotations

import numpy as np
import pytest

from engine import media
from engine.errors import Cancelled
from engine.face import FaceTracker, face_mesh, mouth_aperture
from engine.pipeline import RenderRequest, prepare_avatar, render
from tests.engine.lipsync.helpers import NEW_SCRIPT, decoded_rgb, trajectory_for

# Each builds or renders a real mouth library: the engine end to end.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(root, speaking):
    """The speaking video prepared as the Django app prepares avatars; and its progress."""
    events: list[tuple[str, float]] = []
    avatar = prepare_avatar(kind="video", source=speaking, workdir=root / "avatar",
                            progress=lambda stage, f: events.append((stage, f)))
    return avatar, events


def test_prepared_avatar_renders_new_speech_with_a_moving_mouth(root, prepared):
    prepared, events = prepared
    stages = []
    for stage, _ in events:
        if not stages or stages[-1] != stage:
            stages.append(stage)
    assert stages == ["preview", "normalising", "tracking", "poster"]
    assert prepared.library_path is not None and prepared.library_path.is_file()
    assert prepared.report["usable_frames"] >= 290 and "warnings" in prepared.report

    frame_events: list[float] = []
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=prepared.media_path, library=prepared.library_path,
            output=root / "lipsync.mp4", poster=root / "lipsync.jpg", text=NEW_SCRIPT,
        ),
        progress=lambda stage, f: frame_events.append(f) if stage == "frames" else None,
    )
    assert media.moov_before_mdat(result.video_path)
    assert len(frame_events) >= 2 and frame_events == sorted(frame_events) and frame_events[-1] == 1.0
    out = list(media.iter_video_frames(result.video_path))
    source = decoded_rgb(prepared.media_path, range(len(out)))  # reverse loop: frame k ↔ source k
    assert len(out) == result.frame_count

    trajectory = trajectory_for(NEW_SCRIPT)
    tracker = FaceTracker()
    rendered_ap = np.array([mouth_aperture(tracker.track(frame)) for frame in out])
    tracker.close()
    tracker = FaceTracker()
    source_ap = np.array([mouth_aperture(tracker.track(frame)) for frame in source])
    tracker.close()
    n = min(len(rendered_ap), trajectory.frame_count)
    jaw = trajectory.jaw[:n]
    # the mouth follows the new speech, not the footage's old one
    assert np.corrcoef(rendered_ap[:n], jaw)[0, 1] > 0.5
    assert np.corrcoef(rendered_ap[:n], jaw)[0, 1] > np.corrcoef(source_ap[:n], jaw)[0, 1] + 0.2
    # the mouth region changed; the top of the frame (hair, backdrop) did not
    lips = face_mesh(source[0], static=True)[0][[61, 291, 0, 17]]
    (x0, y0), (x1, y1) = lips.min(axis=0).astype(int), lips.max(axis=0).astype(int)
    mouth = (slice(y0 - 5, y1 + 5), slice(x0 - 5, x1 + 5))
    changed = np.mean([np.abs(a[mouth].astype(int) - b[mouth]).mean() for a, b in zip(out, source)])
    top = np.mean([np.abs(a[:120].astype(int) - b[:120]).mean() for a, b in zip(out, source)])
    assert changed > 3.0 and top < 1.5


def test_cancelling_a_lip_synced_render_leaves_nothing(root, prepared):
    prepared, _ = prepared
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    output = root / "cancelled.mp4"
    with pytest.raises(Cancelled):
        render(
            RenderRequest(avatar_kind="video", avatar_media=prepared.media_path, library=prepared.library_path,
                          output=output, poster=root / "cancelled.jpg", text=NEW_SCRIPT * 3),
            should_cancel=should_cancel,
        )
    assert not output.exists() and not list(root.glob("cancelled*.part*"))


def test_renders_without_a_library_as_before(root, speaking):
    result = render(RenderRequest(avatar_kind="video", avatar_media=speaking, output=root / "plain.mp4",
                                  poster=root / "plain.jpg", text="Just the footage."))
    first = next(media.iter_video_frames(result.video_path))
    assert np.abs(first.astype(int) - decoded_rgb(speaking, [0])[0]).mean() < 3
