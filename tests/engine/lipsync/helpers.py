"""Scripts and small helpers for the lip-sync tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import media, speech, visemes

PBM_SCRIPT = "Bob bought a big map. My mum baked a pumpkin pie, maybe by mistake."
NEW_SCRIPT = "Good morning! Today we talk about oranges, apples and a very big cheese."


def trajectory_for(text: str, fps: float = 25.0):
    return visemes.trajectory_from_speech(speech.synthesize(text), fps=fps)


def decoded_rgb(path: Path, indices) -> list[np.ndarray]:
    with media.VideoReader(path) as reader:
        return [reader.rgb(frame) for frame in reader.frames(indices)]
