"""The rendered video the way creators publish it: size, shape, frame rate and quality.

- ``OutputFormat``: what the creator chose — a short edge of 480/720/1080/2160 pixels or the
  source's own, the aspect (keep, 9:16, 1:1, 16:9), upscaling allowed or not, the frame rate
  (the source's, 25 or 30) and the quality (CRF 17, or the source's bitrate clamped to
  1–9 Mbps, as Tencent's ``VideoParametersConsistent`` describes).
- ``check_output_format(fmt, width=, height=)`` refuses, with a sentence, what cannot be
  made from a source of that size (a resolution above it without upscaling).
- ``plan_frame(fmt, width, height, face=None) -> FramePlan``: the crop of the source frame
  (around the face, for a new aspect) and the size it is scaled to.
- ``FrameShaper(plan)``: applies a plan to each frame as it streams to the encoder.
- ``encoder_settings(fmt)``: the CRF or bitrate for ``media.VideoWriter``.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np

from .errors import InputRejected

ASPECTS = {"keep": None, "9:16": (9, 16), "1:1": (1, 1), "16:9": (16, 9)}
RESOLUTIONS = (480, 720, 1080, 2160)  # short edges; 2160 is 4K UHD
FRAME_RATES = (25, 30)
DEFAULT_CRF = 17  # visually lossless for faces; creators re-encode on upload to their platform
MIN_BITRATE, MAX_BITRATE = 1_000_000, 9_000_000
# Where the face sits in a crop that cannot hold the whole frame's height: a little above the
# middle, as a camera operator frames a speaker (room for the shoulders below).
FACE_HEIGHT_IN_CROP = 0.42


@dataclass(frozen=True)
class OutputFormat:
    resolution: int | None = None  # the short edge in pixels; None keeps the source's
    aspect: str = "keep"
    upscale: bool = False
    fps: float | None = None  # None keeps the source's (a photo's default rate)
    match_bitrate: int | None = None  # the source's bits per second; None: CRF 17

    @property
    def changes_frame(self) -> bool:
        return self.resolution is not None or self.aspect != "keep"


@dataclass(frozen=True)
class FramePlan:
    crop: tuple[int, int, int, int]  # x, y, width, height in the source frame
    size: tuple[int, int]  # output width, height (even)
    source: tuple[int, int]

    @property
    def is_identity(self) -> bool:
        return self.crop == (0, 0, *self.source) and self.size == self.source


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _crop_box(width: int, height: int, aspect: str, face: tuple[float, float] | None) -> tuple[int, int, int, int]:
    ratio = ASPECTS[aspect]
    if ratio is None:
        return 0, 0, width, height
    target = ratio[0] / ratio[1]
    if width / height > target:  # too wide: keep the height, cut the sides
        crop_w, crop_h = _even(height * target), height
    else:
        crop_w, crop_h = width, _even(width / target)
    crop_w, crop_h = min(crop_w, width // 2 * 2), min(crop_h, height // 2 * 2)
    cx, cy = face if face is not None else (0.5, 0.5)
    x = int(round(cx * width - crop_w / 2))
    y = int(round(cy * height - crop_h * FACE_HEIGHT_IN_CROP))
    x = min(max(0, x), width - crop_w)
    y = min(max(0, y), height - crop_h)
    return x, y, crop_w, crop_h


def check_output_format(fmt: OutputFormat, *, width: int, height: int) -> None:
    """Refuse what this source cannot give; nothing else depends on the source."""
    if fmt.aspect not in ASPECTS:
        raise InputRejected(f"Choose the shape as one of {', '.join(ASPECTS)}.", field="aspect", code="aspect")
    if fmt.resolution is not None and fmt.resolution not in RESOLUTIONS:
        raise InputRejected("Choose a resolution of 480p, 720p, 1080p or 4K, or keep the avatar's own.",
                            field="resolution", code="resolution")
    if fmt.fps is not None and fmt.fps not in FRAME_RATES:
        raise InputRejected("Choose 25 or 30 frames per second, or keep the avatar's own rate.",
                            field="fps", code="fps")
    if fmt.resolution is not None and not fmt.upscale:
        _, _, crop_w, crop_h = _crop_box(width, height, fmt.aspect, None)
        available = min(crop_w, crop_h)
        if fmt.resolution > available:
            raise InputRejected(
                f"This avatar gives at most {available} pixels on the short edge"
                f"{'' if fmt.aspect == 'keep' else ' in that shape'}, so {_label(fmt.resolution)} would be "
                "blown up and blurry; choose a lower resolution, or allow upscaling.",
                field="resolution", code="upscale_needed",
            )


def _label(resolution: int) -> str:
    return "4K" if resolution == 2160 else f"{resolution}p"


def plan_frame(fmt: OutputFormat, width: int, height: int, face: tuple[float, float] | None = None) -> FramePlan:
    """``face``: the face's centre relative to the frame (0..1), where a crop is centred."""
    crop = _crop_box(width, height, fmt.aspect, face)
    crop_w, crop_h = crop[2], crop[3]
    if fmt.resolution is None:
        size = (crop_w // 2 * 2, crop_h // 2 * 2)
    else:
        scale = fmt.resolution / min(crop_w, crop_h)
        if scale > 1 and not fmt.upscale:
            scale = 1.0
        size = (_even(crop_w * scale), _even(crop_h * scale))
    return FramePlan(crop=crop, size=size, source=(width, height))


class FrameShaper:
    """Crop and scale each frame to the plan. A plain resize of a decoded frame is left to the
    encoder's own scaler (no RGB round trip); a crop goes through RGB."""

    def __init__(self, plan: FramePlan):
        self.plan = plan
        self._crops = plan.crop != (0, 0, *plan.source)

    def __call__(self, frame: np.ndarray | av.VideoFrame) -> np.ndarray | av.VideoFrame:
        if self.plan.is_identity:
            return frame
        if isinstance(frame, av.VideoFrame):
            if not self._crops:
                return frame  # the writer scales decoded frames to its own size
            frame = frame.to_ndarray(format="rgb24")
        x, y, w, h = self.plan.crop
        region = frame[y : y + h, x : x + w]
        out_w, out_h = self.plan.size
        if (w, h) == (out_w, out_h):
            return np.ascontiguousarray(region)
        shrinking = out_w < w
        return cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def encoder_settings(fmt: OutputFormat) -> dict:
    """Keyword arguments for ``media.VideoWriter``: CRF 17, or the source's bitrate clamped."""
    if fmt.match_bitrate:
        return {"bitrate": int(min(MAX_BITRATE, max(MIN_BITRATE, fmt.match_bitrate)))}
    return {"crf": DEFAULT_CRF}


__all__ = [
    "ASPECTS",
    "FRAME_RATES",
    "RESOLUTIONS",
    "FramePlan",
    "FrameShaper",
    "OutputFormat",
    "check_output_format",
    "encoder_settings",
    "plan_frame",
]
