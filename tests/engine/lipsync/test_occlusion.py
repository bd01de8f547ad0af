"""Covered mouths in the footage: found frame by frame, however often the cover is there."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from engine import media, visemes
from engine.lipsync import Library, build_library, showable_frames
from tests import mediagen

# Each builds a real mouth library from a real video.
pytestmark = pytest.mark.slow

FPS = 25
SECONDS = 10.0
# One second of footage at a time: "." clear, "m" a headset microphone, "h" a hand, "d" a dark
# card. The microphone is there for 40 % of the clip: common enough for the mouth thumbnails'
# PCA to learn it. Runs are cut inside each second too (below), so covers come and go.
PATTERN = ".mm.hdm.mh"


def _cover_of(frame: int) -> str:
    second, within = divmod(frame, FPS)
    kind = PATTERN[second % len(PATTERN)]
    if kind != "." and within >= 21:  # the last 4 frames of a covered second are clear again
        return "."
    if kind == "." and within < 6 and second % 2:  # and some clear seconds start covered
        return "m"
    return kind


def _paint_cover(rgb: np.ndarray, kind: str, frame: int) -> np.ndarray:
    """The 512×512 astronaut with ``kind`` in front of her mouth (it moves a little)."""
    import cv2

    mouth = mediagen._astronaut_mouth()
    points, iod = mouth["points"], mouth["iod"]
    left, right = points[61, :2], points[291, :2]
    cx, cy = (left + right) / 2 + (0, 0.12 * iod)  # a little low: the jaw opens downwards
    half = float(np.linalg.norm(right - left)) / 2
    wobble = 0.03 * iod * math.sin(frame / 3.0)
    out = rgb.copy()
    if kind == "m":
        # boom arm from her cheek, a foam ball over the lips, its texture rough
        cv2.line(out, (int(cx), int(cy + wobble)), (int(cx + 3.2 * half), int(cy - 0.6 * iod)), (40, 40, 44),
                 max(2, int(0.07 * iod)), cv2.LINE_AA)
        ball = np.zeros(out.shape[:2], np.uint8)
        cv2.ellipse(ball, (int(cx + wobble), int(cy)), (int(1.45 * half), int(0.42 * iod)), 0, 0, 360, 255, -1,
                    cv2.LINE_AA)
        rng = np.random.default_rng(frame)
        foam = 55 + rng.normal(0, 9, out.shape[:2])
        alpha = (ball.astype(np.float32) / 255.0)[..., None]
        colour = np.stack([foam, foam, foam * 1.08], axis=-1)
        out = (out * (1 - alpha) + colour * alpha).clip(0, 255).astype(np.uint8)
    elif kind == "h":
        # a skin-coloured hand: her own cheek's colour, a palm and four finger creases
        cheeks = points[[50, 280], :2].astype(int)
        patches = [rgb[y - 4:y + 5, x - 4:x + 5].reshape(-1, 3) for x, y in cheeks]
        skin = np.median(np.concatenate(patches), axis=0)
        palm = (int(cx + wobble), int(cy))
        cv2.ellipse(out, palm, (int(1.7 * half), int(0.5 * iod)), 8, 0, 360, tuple(int(v) for v in skin), -1,
                    cv2.LINE_AA)
        crease = tuple(int(v) for v in skin * 0.8)
        for k in range(1, 4):
            y = int(cy - 0.5 * iod + k * 0.25 * iod)
            cv2.line(out, (int(cx - 1.5 * half), y), (int(cx + 1.5 * half), y + 3), crease, 1, cv2.LINE_AA)
    else:
        cv2.rectangle(out, (int(cx - 1.4 * half + wobble), int(cy - 0.4 * iod)),
                      (int(cx + 1.4 * half + wobble), int(cy + 0.42 * iod)), (28, 26, 34), -1)
    return out


def make_covered_video(path: Path, *, seconds: float = SECONDS, cover_of=_cover_of) -> Path:
    """``mediagen.make_speaking_video``'s astronaut, her mouth covered where ``cover_of(frame)``
    says (by default in ~60 % of frames)."""
    import cv2

    width, height, margin = 480, 360, 8
    audio, rate, events = mediagen.speech_timeline(seconds)
    trajectory = visemes.trajectory_from_phonemes(events, audio, rate, FPS, alphabet="espeak")
    backdrop = mediagen._backdrop(width + 2 * margin, height + 2 * margin)
    side = height + 2 * margin
    left = (width + 2 * margin - side) // 2
    astronaut = data.astronaut()
    with media.VideoWriter(path, width=width, height=height, fps=FPS, audio=audio, sample_rate=rate) as writer:
        for k in range(int(seconds * FPS)):
            i = min(k, trajectory.frame_count - 1)
            person = mediagen.animate_mouth(
                astronaut, jaw=float(trajectory.jaw[i]), width=float(trajectory.width[i]),
                closure=float(trajectory.closure[i]), teeth=float(trajectory.teeth[i]),
            )
            kind = cover_of(k)
            if kind != ".":
                person = _paint_cover(person, kind, k)
            canvas = backdrop.copy()
            canvas[:, left:left + side] = cv2.resize(person, (side, side), interpolation=cv2.INTER_AREA)
            writer.write(mediagen.panned(canvas, k / FPS, (width, height), margin))
    return path


@pytest.fixture(scope="module")
def covered(root):
    video = make_covered_video(root / "covered.mp4")
    path = root / "covered.npz"
    report = build_library(video, path)
    kinds = np.array([_cover_of(k) for k in range(int(SECONDS * FPS))])
    return Library.load(path), report, kinds


def test_it_finds_the_covered_mouths_however_often_the_cover_is_there(covered):
    lib, report, kinds = covered
    is_covered = kinds != "."
    assert 0.55 <= is_covered.mean() <= 0.65
    assert (kinds == "m").mean() >= 0.3  # the microphone is common: no outlier
    # Every kind of cover is found (the frame is left out of units and backgrounds) ...
    for kind in "mhd":
        found = ~lib.ok[kinds == kind]
        assert found.mean() >= 0.9, (kind, found.mean())
    # ... and her clear mouth is not mistaken for one.
    clear = ~is_covered
    assert (~lib.ok[clear]).mean() <= 0.05
    assert lib.usable[clear].mean() >= 0.9
    assert not lib.usable[is_covered].any()
    assert report.usable_frames == int(lib.usable.sum())


def test_it_keeps_covered_frames_out_of_the_background_order(covered):
    lib, _, kinds = covered
    shown = showable_frames(lib)
    assert shown[kinds == "."].mean() >= 0.95
    assert shown[kinds != "."].mean() <= 0.1


def test_it_tells_the_creator_what_covers_the_mouth(covered):
    _, report, kinds = covered
    share = round(100 * (kinds != ".").mean())
    sentences = [w for w in report.warnings if w.startswith("Something covers your mouth in")]
    assert len(sentences) == 1
    assert "microphone" in sentences[0] and "%" in sentences[0]
    shown = int(sentences[0].split("Something covers your mouth in ")[1].split(" %")[0])
    assert abs(shown - share) <= 5


def test_a_clear_speaking_video_gets_no_cover_warning(library):
    _, report = library
    assert not any(w.startswith("Something covers your mouth") for w in report.warnings)


def test_it_refuses_footage_whose_mouth_is_always_covered(root):
    from engine.errors import InputRejected

    video = make_covered_video(root / "always-covered.mp4", seconds=4.0, cover_of=lambda frame: "m")
    with pytest.raises(InputRejected) as refused:
        build_library(video, root / "always-covered.npz")
    assert refused.value.code == "mouth_covered"
    assert str(refused.value).startswith(
        "Something covers your mouth in 100 % of the video (a microphone, a hand), "
        "so lip sync has no frame of your lips to learn from.")
