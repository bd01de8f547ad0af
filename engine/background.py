"""Background replacement for avatar frames (MediaPipe selfie segmentation).

``Background`` is None (keep the footage as shot), an ``(r, g, b)`` colour, or the path of
an image (scaled to cover the frame, centre-cropped). The person mask is feathered so hair
doesn't get a cut-out edge, and smoothed over time so the edge doesn't shimmer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

import numpy as np

from .errors import InputRejected

Background = Union[None, tuple[int, int, int], str, os.PathLike]

# How much of the previous mask survives into the next frame; higher is steadier but lags
# fast head moves. 0.35 keeps the lag under ~2 frames at 25 fps.
MASK_MEMORY = 0.35
FEATHER_FRACTION = 0.006
  # blur radius as a share of the frame's long side


def parse_background(value) -> Background:
    """Accept None, an (r,g,b) tuple, "#rrggbb", or an image path."""
    if value is None or value == "":
        return None
    if isinstance(value, (tuple, list)) and len(value) == 3:
        return tuple(int(max(0, min(255, c))) for c in value)  # type: ignore[return-value]
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
            return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    return Path(value)


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(image, (max(width, round(w * scale)), max(height, round(h * scale))), interpolation=cv2.INTER_AREA)
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def _load_background_image(path) -> np.ndarray:
    """The background image as RGB, or a sentence that names the background, not the footage.

    The upload rules are checked again here, from the header: a huge declared picture would
    cost gigabytes to decode before anything could refuse it.
    """
    from PIL import Image

    from .media import load_image_rgb
    from .preflight import check_background_image

    check_background_image(path)
    try:
        return load_image_rgb(path)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InputRejected(
            "The background image can't be read; export it again as a JPEG, PNG or WebP.",
            field="background_image",
            code="background_unreadable",
        ) from None


class BackgroundCompositor:
    """``apply(rgb) → rgb`` with the person kept and everything else replaced.

    One compositor per frame sequence (it carries the temporal mask state and its own
    segmentation graph, so separate renders don't share MediaPipe state). With
    ``background=None`` it is the identity and loads no model.
    """

    def __init__(self, background: Background, size: tuple[int, int]):
        self.background = parse_background(background)
        self.width, self.height = size
        self._plate: np.ndarray | None = None
        self._segmenter = None
        self._previous: np.ndarray | None = None
        if self.background is None:
            return
        if isinstance(self.background, tuple):
            plate = np.empty((self.height, self.width, 3), np.uint8)
            plate[:] = self.background
        else:
            plate = _cover(_load_background_image(self.background), self.width, self.height)
        self._plate = plate.astype(np.float32)
        from mediapipe.python.solutions import selfie_segmentation

        # The general model (256×256) costs ~3 ms more per frame than the landscape one but
        # leaves far less of the background (flags, props) in the mask.
        self._segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)

    @property
    def active(self) -> bool:
        return self.background is not None

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Person probability 0..1 (float32, h×w), feathered and temporally smoothed."""
        import cv2

        result = self._segmenter.process(np.ascontiguousarray(rgb))
        raw = result.segmentation_mask
        if raw is None:
            raw = np.ones(rgb.shape[:2], np.float32)
        raw = raw.astype(np.float32)
        if raw.shape != rgb.shape[:2]:
            raw = cv2.resize(raw, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        # Sharpen the model's soft ramp around 0.5, then feather by a fixed pixel radius so
        # the edge width doesn't depend on how confident the model was.
        mask = np.clip((raw - 0.5) * 4.0 + 0.5, 0.0, 1.0)
        radius = max(1, int(max(rgb.shape[:2]) * FEATHER_FRACTION))
        mask = cv2.GaussianBlur(mask, (radius * 2 + 1, radius * 2 + 1), 0)
        if self._previous is not None and self._previous.shape == mask.shape:
            mask = MASK_MEMORY * self._previous + (1.0 - MASK_MEMORY) * mask
        self._previous = mask
        return mask

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        if self.background is None:
            return rgb
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}×{rgb.shape[0]}, compositor expects {self.width}×{self.height}")
        alpha = self.mask(rgb)[..., None]
        out = rgb.astype(np.float32) * alpha + self._plate * (1.0 - alpha)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    __call__ = apply

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None
