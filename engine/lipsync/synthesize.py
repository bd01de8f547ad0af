"""Rendering: lip-synced frames streamed from the footage, the library and a trajectory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..media import VideoReader, frame_to_rgb
from ..progress import CancelCheck, CancelFn
from ..timeline import check_disable_intervals, disabled_frames
from .atlas import AtlasReader
from .composite import MouthCompositor, lip_correction_field, lip_gap_change
from .library import Library
from .mouth_model import predict_state
from .planner import Planner, SelectionWeights
from .yuv import colour_matrix, single_threaded_cv2


class RenderedFrame:
    """One output frame. ``frame`` is the yuv420p picture for the encoder; ``rgb`` and
    ``mouth_mask`` are computed on first access (a full-frame RGB conversion is the most
    expensive thing a render could do, and the pipeline never needs it).

    ``source_index`` is the footage frame whose mouth is shown (the background frame itself
    when the frame is untouched), ``background_index`` the footage frame drawn on.
    ``mouth_mask`` is the blend mask actually used (float32 H×W in [0, 1]) or None for an
    untouched frame, whose ``rgb`` is byte-identical to the decoded background frame's. A
    touched frame's ``rgb`` is too, except within 2 pixels of the mask (4:2:0 chroma).
    """

    __slots__ = ("index", "source_index", "background_index", "frame", "background", "roi", "roi_mask",
                 "rotation", "_rgb")

    def __init__(self, index, source_index, background_index, frame, roi=None, roi_mask=None, rotation=0,
                 background=None):
        self.index = index
        self.source_index = source_index
        self.background_index = background_index
        self.frame = frame
        self.background = background if background is not None else frame  # the decoded frame
        self.roi = roi  # (x0, y0, x1, y1) in frame pixels, or None
        self.roi_mask = roi_mask
        self.rotation = rotation
        self._rgb = None

    @property
    def touched(self) -> bool:
        return self.roi is not None

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            base = frame_to_rgb(self.background, rotation=self.rotation)
            if self.roi is not None:
                import cv2

                # The new frame's pixels where the mask reaches (plus the chroma they share);
                # everywhere else the decoded frame's own conversion, which also keeps its
                # chroma siting (a fresh frame carries none, and swscale reads it).
                blended = frame_to_rgb(self.frame, rotation=self.rotation)
                x0, y0, x1, y1 = self.roi
                near = cv2.dilate((self.roi_mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                window = base[y0:y1, x0:x1]
                window[near] = blended[y0:y1, x0:x1][near]
            self._rgb = base
        return self._rgb

    @property
    def mouth_mask(self) -> np.ndarray | None:
        if self.roi is None:
            return None
        mask = np.zeros((self.frame.height, self.frame.width), np.float32)
        x0, y0, x1, y1 = self.roi
        mask[y0:y1, x0:x1] = self.roi_mask
        return mask

    def __repr__(self) -> str:
        return f"RenderedFrame(index={self.index}, source_index={self.source_index}, touched={self.touched})"


def showable_frames(library: Path | Library, disable_intervals: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Per footage frame: may a render show it? Yes where the library can put a new mouth on
    it (``Library.ok``: a face tracked, frontal enough, the mouth not covered) and inside the
    creator's untouched intervals (there the footage's own mouth is what they asked for). The
    rest would show the footage's mouth moving to other words: ``timeline`` skips them."""
    if isinstance(library, Library):
        ok, fps = library.ok, library.fps
    else:
        ok, fps = Library.load_shown(library)
    disabled = disabled_frames(check_disable_intervals(disable_intervals), fps)
    shown = np.asarray(ok, bool).copy()
    if disable_intervals:
        shown |= np.array([disabled(i) for i in range(len(shown))], bool)
    return shown


def _nearest_showable(shown: np.ndarray) -> np.ndarray:
    """For each footage frame, the nearest frame that may be shown (itself when it may)."""
    n = len(shown)
    good = np.flatnonzero(shown)
    if len(good) == 0:
        return np.arange(n)
    position = np.searchsorted(good, np.arange(n)).clip(0, len(good) - 1)
    before = good[np.maximum(position - 1, 0)]
    after = good[position]
    return np.where(np.abs(before - np.arange(n)) <= np.abs(after - np.arange(n)), before, after)


def synthesize_frames(
    *,
    media: Path,
    library: Path,
    trajectory,
    background_indices: Iterable[int],
    disable_intervals: Sequence[tuple[float, float]] = (),
    should_cancel: CancelFn | None = None,
    weights: SelectionWeights | None = None,
) -> Iterator[RenderedFrame]:
    """Lip-synced frames, one per trajectory frame, streamed.

    ``media`` is the avatar's footage (the file the library was built from);
    ``background_indices`` gives, for output frame i, the footage frame to draw on (see
    ``timeline.background_indices``); ``trajectory`` (``visemes.Trajectory`` at the output frame
    rate) drives the mouth. ``disable_intervals`` are [start, end] seconds *of the footage*
    (Tencent's DisableIntervals: "lip sync is not applied to the original video from 1 s to
    2 s"): background frames inside them are yielded exactly as decoded. A background frame
    the library cannot put a mouth on (no face tracked, turned away, mouth covered) is never
    shown with its own mouth: the nearest frame that can take one is drawn on instead (the
    pipeline's background order skips such frames already: ``showable_frames``). Memory stays
    bounded: frames are decoded as needed and mouth crops come from the library's small atlas
    stream.
    """
    lib = Library.load(library)
    intervals = check_disable_intervals(disable_intervals)
    total = trajectory.frame_count
    backgrounds: list[int] = []
    for value in background_indices:
        if len(backgrounds) >= total:
            break
        backgrounds.append(int(value))
    check_cancel = CancelCheck(should_cancel, "The render was cancelled.")
    reader = VideoReader(media)
    atlas = None
    try:
        with single_threaded_cv2():
            if abs(reader.fps - lib.fps) > 0.01 or abs(reader.frame_count - lib.frame_count) > 2:
                raise EngineError(
                    "The mouth library doesn't belong to this footage; prepare the avatar again."
                )
            lib = lib.for_frame_size(reader.width, reader.height)  # the avatar's master: same frames, larger
            disabled = disabled_frames(intervals, reader.fps)
            stand_in = _nearest_showable(showable_frames(lib, intervals))
            backgrounds = [int(stand_in[min(max(b, 0), lib.frame_count - 1)]) for b in backgrounds]
            predicted = predict_state(lib, trajectory)
            if len(predicted) < len(backgrounds):
                missing = len(backgrounds) - len(predicted)
                predicted = np.vstack([predicted, np.repeat(predicted[-1:], missing, axis=0)])
            choices = Planner(lib, predicted[: len(backgrounds)], trajectory, backgrounds, weights).plan()
            atlas = AtlasReader(lib.atlas)
            compositor: MouthCompositor | None = None
            for t, frame in enumerate(reader.frames(backgrounds)):
                check_cancel()
                choice = next(choices)
                b = min(max(backgrounds[t], 0), lib.frame_count - 1)
                if frame.format.name not in ("yuv420p", "yuvj420p"):
                    frame = frame.reformat(format="yuv420p")
                if disabled(b) or not lib.ok[b] or reader.rotation:
                    yield RenderedFrame(t, b, b, frame, rotation=reader.rotation)
                    continue
                if compositor is None:
                    compositor = MouthCompositor(lib, colour_matrix(frame))
                crop = atlas.get(int(lib.atlas_index[choice.unit]))
                fade_crop = None
                if choice.fade_from >= 0 and lib.atlas_index[choice.fade_from] >= 0:
                    fade_crop = atlas.get(int(lib.atlas_index[choice.fade_from]))
                correction = lip_correction_field(
                    lib.points[choice.unit], np.array(lib.crop_origin, np.float32), lib.crop_size, lib.iod,
                    lip_gap_change(lib, choice, predicted[t]),
                )
                out, roi, mask = compositor.compose(
                    frame, b, choice.unit, crop, fade_crop, choice.fade, correction
                )
                if roi is None:
                    yield RenderedFrame(t, b, b, frame)
                else:
                    yield RenderedFrame(t, choice.unit, b, out, roi, mask, background=frame)
    finally:
        if atlas is not None:
            atlas.close()
        reader.close()
