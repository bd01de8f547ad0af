"""yuv420p helpers shared by the library builder and the renderer: affine warps between the
luma and chroma grids, a decoded frame's colour matrix, and OpenCV's thread pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .. import media


def affine3(m: np.ndarray) -> np.ndarray:
    """A 2×3 affine as its 3×3 homogeneous matrix (float64), for chaining with ``@``."""
    return np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])


def chroma_matrix(matrix: np.ndarray) -> np.ndarray:
    """The luma-space affine expressed between chroma planes (centre-sited 4:2:0 samples)."""
    to_luma = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
    to_chroma = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]])
    return (to_chroma @ affine3(matrix) @ to_luma)[:2].astype(np.float32)


def warp_planes(planes, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp yuv420p planes with a luma-space affine ``matrix`` into a ``size`` (w, h) crop."""
    import cv2

    w, h = size
    # bicubic: the crop is resampled again when it is pasted, and two bilinear passes blur
    y = cv2.warpAffine(planes[0], matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    half = chroma_matrix(matrix)
    u = cv2.warpAffine(planes[1], half, (w // 2, h // 2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    v = cv2.warpAffine(planes[2], half, (w // 2, h // 2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return y, u, v


def colour_matrix(frame) -> int:
    """The YUV ↔ RGB matrix (709 or 601) a decoded frame was made with."""
    return 709 if media.source_colorspace(frame) == 1 else 601


@contextmanager
def single_threaded_cv2() -> Iterator[None]:
    """OpenCV on one thread for the duration: its thread pool costs more than it saves on
    crops this small (its workers spin while x264's threads need the second core)."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
