"""Small videos made frame by frame, for tests that need exact control over the stream."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(width: int, height: int, index: int) -> np.ndarray:
    """A frame whose quadrants are distinct colours, plus a bar that moves with ``index``."""
    img = np.zeros((height, width, 3), np.uint8)
    img[: height // 2, : width // 2] = (220, 30, 30)
    img[: height // 2, width // 2 :] = (30, 200, 40)
    img[height // 2 :, : width // 2] = (30, 40, 210)
    img[height // 2 :, width // 2 :] = (230, 230, 230)
    x = (index * 4) % max(1, width - 8)
    img[height // 4 : height // 4 + 8, x : x + 8] = 0
    return img


def encode_video(
    path: Path, *, fmt: str, width: int, height: int, frames: int = 50, pix_fmt: str = "yuv420p",
    rotation: int | None = None, jitter_ms: int = 0,
) -> Path:
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(width, height, i), format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 40 + (int(rng.integers(-jitter_ms, jitter_ms + 1)) if jitter_ms else 0)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
