"""Shared portrait and trajectories for the photo-avatar tests."""

from __future__ import annotations

import numpy as np
import pytest

FPS = 25.0
# A little speech: visemes held 3–5 frames each, pauses of rest between phrases.
SEQUENCE = ("sil", "sil", "aa", "PP", "E", "DD", "oh", "sil", "sil", "ou", "FF", "aa", "SS", "ih",
            "sil", "sil", "aa", "nn", "oh", "PP", "E", "sil")


def portrait() -> np.ndarray:
    """skimage's astronaut, cropped round the face and enlarged 1.5× to 480 px: at 512 px her
    face is only 106 px tall, her lips a few pixels thick for FaceMesh to measure."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut()[20:340, 100:420], (480, 480), interpolation=cv2.INTER_CUBIC)


def viseme_trajectory(sequence=SEQUENCE, hold: int = 4, fps: float = FPS):
    """A Trajectory from viseme targets, each held ``hold`` frames, eased over two frames."""
    from engine.visemes import Trajectory
    from engine.visemes.mapping import PARAMETERS, TARGETS

    labels = [v for v in sequence for _ in range(hold)]
    params = np.array([TARGETS[v] for v in labels], np.float32)
    kernel = np.array([0.25, 0.5, 0.25], np.float32)
    for column in range(params.shape[1]):
        padded = np.pad(params[:, column], 1, mode="edge")
        params[:, column] = np.convolve(padded, kernel, mode="valid")
    columns = {name: params[:, i].copy() for i, name in enumerate(PARAMETERS)}
    return Trajectory(fps=fps, visemes=labels, **columns)


def speech_like(trajectory, rate: int = 16000) -> np.ndarray:
    """Noise whose loudness follows the jaw: loud syllables, silent pauses."""
    rng = np.random.default_rng(3)
    per_frame = int(rate / trajectory.fps)
    envelope = np.repeat(0.02 + 0.4 * trajectory.jaw + 0.1 * (trajectory.closure < 0.5), per_frame)
    return (rng.standard_normal(len(envelope)) * envelope).astype(np.float32)


@pytest.fixture(scope="module")
def rig():
    from engine.photo import PhotoRig

    return PhotoRig.from_image(portrait())
