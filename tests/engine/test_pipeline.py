"""The engine end to end: preparation, renders, cancel. Loop modes: ``test_timeline.py``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data

from engine import media, pipeline, speech
from engine.errors import Cancelled
from engine.pipeline import RenderRequest, prepare_avatar, render
from tests import media_cache, mediagen

TEXT = "Hello, and welcome. This avatar was rendered by the local engine, from a typed script."


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def video_avatar(root) -> pipeline.PreparedAvatar:
    source = media_cache.talking_video(12.0)
    return prepare_avatar(kind="video", source=source, workdir=root / "video-avatar")


@pytest.fixture(scope="module")
def photo_avatar(root) -> pipeline.PreparedAvatar:
    source = mediagen.make_photo(root / "me.jpg", fmt="jpg")
    return prepare_avatar(kind="photo", source=source, workdir=root / "photo-avatar")


@pytest.fixture(scope="module")
def spoken_seconds() -> float:
    return speech.synthesize(TEXT).duration


# -- preparation ----------------------------------------------------------------------------


@pytest.mark.slow
def test_prepares_a_video_avatar(video_avatar):
    prepared = video_avatar
    info = media.probe_in_process(prepared.media_path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    with av.open(str(prepared.media_path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert (prepared.width, prepared.height, prepared.fps, prepared.frame_count) == (640, 480, 25.0, 300)
    assert prepared.duration == pytest.approx(12.0, abs=0.1)
    assert media.sniff_type(prepared.poster_path) == "image/jpeg"
    assert media.probe_in_process(prepared.preview_path).duration == pytest.approx(3.0, abs=0.1)


@pytest.mark.slow
def test_video_preview_comes_first_and_fast(root):
    source = mediagen.make_talking_video(root / "quick.mp4", seconds=10.0, size=(1280, 720))
    events: list[tuple[str, float, float]] = []
    started = time.monotonic()
    preview_at: list[float] = []

    def on_preview(path: Path) -> None:
        assert path.exists()
        preview_at.append(time.monotonic() - started)

    prepare_avatar(
        kind="video", source=source, workdir=root / "quick",
        progress=lambda stage, f: events.append((stage, f, time.monotonic() - started)), on_preview=on_preview,
    )
    assert preview_at and preview_at[0] < 5.0
    stages = [stage for stage, _, _ in events]
    assert stages[0] == "preview" and stages.index("normalising") > stages.index("preview")
    assert stages[-1] == "poster" and events[-1][1] == 1.0


def test_prepares_a_photo_avatar_upright_and_even(root):
    # A sideways JPEG whose EXIF says "turn 90° clockwise to view", as phones save them.
    sideways = np.ascontiguousarray(np.rot90(data.astronaut()[:511, :509], 1))
    source = root / "exif.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(sideways).save(source, quality=95, exif=exif)
    prepared = prepare_avatar(kind="photo", source=source, workdir=root / "exif-avatar")
    assert prepared.media_path.suffix == ".png"
    assert (prepared.width % 2, prepared.height % 2) == (0, 0)
    upright = np.asarray(Image.open(prepared.media_path).convert("RGB"))
    assert upright.shape == (510, 508, 3)
    assert np.abs(upright.astype(int) - data.astronaut()[:510, :508]).mean() < 4
    preview = media.probe_in_process(prepared.preview_path)
    assert preview.duration == pytest.approx(3.0, abs=0.1) and preview.has_audio


def test_cancelled_preparation_leaves_nothing(root):
    source = mediagen.make_photo(root / "cancel.png")
    with pytest.raises(Cancelled):
        prepare_avatar(kind="photo", source=source, workdir=root / "cancelled", should_cancel=lambda: True)
    assert list((root / "cancelled").iterdir()) == []


@pytest.mark.slow
def test_preparation_cancelled_while_tracking_leaves_nothing_running(root):
    source = mediagen.make_speaking_video(root / "cancel-tracking.mp4", seconds=6.0)
    stages: list[tuple[str, float]] = []

    def progress(stage: str, fraction: float) -> None:
        stages.append((stage, fraction))

    # Cancelled as the preview is out: the face has been tracked from the first frame on,
    # and half the footage is still to be normalised.
    before = {thread.name for thread in threading.enumerate()}
    with pytest.raises(Cancelled):
        prepare_avatar(kind="video", source=source, workdir=root / "cancelled-video", progress=progress,
                       should_cancel=lambda: ("preview", 1.0) in stages)
    assert ("preview", 1.0) in stages and ("normalising", 1.0) not in stages
    assert list((root / "cancelled-video").iterdir()) == []
    left = {thread.name for thread in threading.enumerate() if thread.is_alive()} - before
    assert not left & {"tracking", "recording", "own-speech"}


@pytest.mark.slow
def test_a_cancel_while_waiting_for_the_footages_speech_stops_its_recognition(root):
    from engine.lipsync import OwnSpeech

    source = mediagen.make_speaking_video(root / "own-speech.mp4", seconds=10.0)
    own = OwnSpeech(source)

    def cancelled() -> None:
        raise Cancelled("The creator cancelled.")

    with pytest.raises(Cancelled):
        own.result(25.0, cancelled)
    assert not own._thread.is_alive()


# -- renders --------------------------------------------------------------------------------


@pytest.mark.slow
def test_renders_a_video_avatar_from_text(root, video_avatar, spoken_seconds):
    events: list[tuple[str, float]] = []
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=video_avatar.media_path,
            output=root / "video-render.mp4", poster=root / "video-render.jpg", text=TEXT,
        ),
        progress=lambda stage, f: events.append((stage, f)),
    )
    facts = mediagen.mp4_facts(result.video_path)
    assert abs(facts["video_seconds"] - spoken_seconds) <= 1 / 25 + 1e-6
    assert abs(result.duration - spoken_seconds) <= 1 / 25 + 1e-6
    assert facts["audio_rms"] > 0.02
    assert media.moov_before_mdat(result.video_path)
    assert (result.width, result.height, result.fps) == (640, 480, 25.0)
    assert result.frame_count == facts["frames"]
    assert media.sniff_type(result.poster_path) == "image/jpeg"
    # Stages in order, each ending at 1.0, with real fractions in between.
    assert [s for s, _ in events if _ == 1.0] == ["speech", "frames", "finalize"]
    frames = [f for s, f in events if s == "frames"]
    assert frames == sorted(frames)
    # The footage is the avatar's own: the first output frame is the first prepared frame.
    first_out = next(media.iter_video_frames(result.video_path))
    first_src = next(media.iter_video_frames(video_avatar.media_path))
    assert np.abs(first_out.astype(int) - first_src).mean() < 3


def test_renders_a_photo_avatar_from_text(root, photo_avatar, spoken_seconds):
    result = render(
        RenderRequest(
            avatar_kind="photo", avatar_media=photo_avatar.media_path,
            output=root / "photo-render.mp4", poster=root / "photo-render.jpg", text=TEXT,
        )
    )
    facts = mediagen.mp4_facts(result.video_path)
    assert facts["fps"] == 25.0
    assert abs(facts["video_seconds"] - spoken_seconds) <= 1 / 25 + 1e-6
    assert facts["audio_rms"] > 0.02
    assert media.moov_before_mdat(result.video_path)
    still = list(media.iter_video_frames(result.video_path))[len(TEXT) % 10]
    photo = np.asarray(Image.open(photo_avatar.media_path).convert("RGB"))
    assert np.abs(still.astype(int) - photo).mean() < 4


def test_renders_a_colour_background(root, photo_avatar):
    result = render(
        RenderRequest(
            avatar_kind="photo", avatar_media=photo_avatar.media_path, output=root / "green.mp4",
            poster=root / "green.jpg", text="A green room.", background=(20, 200, 60),
        )
    )
    frame = next(media.iter_video_frames(result.video_path))
    corner = frame[:40, :40].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - (20, 200, 60)).max() < 12
    photo = np.asarray(Image.open(photo_avatar.media_path).convert("RGB"))
    face = (slice(80, 160), slice(190, 260))  # the astronaut's face keeps its colours (it moves a little)
    assert np.abs(frame[face].reshape(-1, 3).mean(axis=0) - photo[face].reshape(-1, 3).mean(axis=0)).max() < 6


@pytest.mark.slow
def test_cancel_removes_the_partial_output(root, video_avatar):
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3  # let the speech stage pass, stop among the frames

    output = root / "cancelled.mp4"
    with pytest.raises(Cancelled):
        render(
            RenderRequest(
                avatar_kind="video", avatar_media=video_avatar.media_path, output=output,
                poster=root / "cancelled.jpg", text=TEXT * 3,
            ),
            should_cancel=should_cancel,
        )
    assert not output.exists() and not (root / "cancelled.jpg").exists()
    assert not list(root.glob("cancelled*.part*"))
    assert not [thread for thread in threading.enumerate() if thread.name == "lipsync"]  # lip sync stopped


@pytest.mark.slow
def test_a_photo_render_cancelled_among_its_frames_stops_both_animators(root, photo_avatar):
    frames: list[float] = []

    def progress(stage: str, fraction: float) -> None:
        if stage == "frames" and fraction > 0:
            frames.append(fraction)

    output = root / "cancelled-photo.mp4"
    with pytest.raises(Cancelled):
        render(
            RenderRequest(avatar_kind="photo", avatar_media=photo_avatar.media_path, output=output,
                          poster=root / "cancelled-photo.jpg", text=TEXT * 3),
            progress=progress, should_cancel=lambda: bool(frames),
        )
    assert frames and frames[-1] < 1.0
    assert not output.exists() and not list(root.glob("cancelled-photo*"))
    assert not [thread for thread in threading.enumerate() if thread.name == "lipsync"]


def test_it_warms_up_what_the_first_job_would_load(tmp_path):
    """In a fresh interpreter, as a worker process starts: MediaPipe and PocketSphinx load."""
    import subprocess
    import sys

    code = ("import sys; from engine.pipeline import warm_up; "
            "assert 'mediapipe' not in sys.modules and 'pocketsphinx' not in sys.modules; warm_up(); "
            "assert 'mediapipe.python.solutions.face_mesh' in sys.modules and 'pocketsphinx' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
