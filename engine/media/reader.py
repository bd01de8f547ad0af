"""Decoding: frame-indexed, streamed access to a video, memory-bounded even when played backwards."""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from .colour import frame_to_rgb
from .probing import open_input, unreadable_error
from .sniff import sniff_type

# Cache budget for random/reverse access. yuv420p frames are 1.5 bytes per pixel, so this
# holds ~60 frames of 1080p, ~140 of 720p, ~15 of 4K.
DEFAULT_CACHE_BYTES = 192 * 1024 * 1024


class VideoReader:
    """Frame-indexed access to a video's first video stream, streamed.

    ``frames(indices)`` serves any index sequence — forward runs decode sequentially; a
    backward jump decodes a *chunk* ending at the wanted frame (seek to the keyframe before
    the chunk, decode forward) and serves the following backward run from that chunk. Memory
    is bounded by ``cache_bytes`` (the chunk size in frames is ``cache_bytes // frame_bytes``,
    at least 4). Indices assume constant frame rate, which ``normalise_video`` guarantees.
    """

    def __init__(self, path: str | os.PathLike, *, cache_bytes: int = DEFAULT_CACHE_BYTES, threads: bool = True):
        self.path = Path(path)
        self._container = open_input(path, mime=sniff_type(path))
        if not self._container.streams.video:
            self._container.close()
            raise unreadable_error(sniff_type(path))
        self._stream = self._container.streams.video[0]
        if threads:
            self._stream.thread_type = "AUTO"
        average = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        base = self._stream.base_rate
        # r_frame_rate is exact for constant-rate files; average_rate can be off by rounding.
        self.rate = base if base and abs(float(base) - float(average)) / float(average) < 0.01 else average
        self.fps = float(self.rate)
        self.time_base = self._stream.time_base
        duration = 0.0
        if self._stream.duration:
            duration = float(self._stream.duration * self.time_base)
        elif self._container.duration:
            duration = self._container.duration / av.time_base
        self.frame_count = int(self._stream.frames or 0) or max(1, int(round(duration * self.fps)))
        self.duration = self.frame_count / self.fps
        self.coded_width = self._stream.codec_context.width
        self.coded_height = self._stream.codec_context.height
        self.rotation = 0
        self._pts0: int | None = None
        self._decoder: Iterator[av.VideoFrame] | None = None
        self._next_index = 0
        self._cache: OrderedDict[int, av.VideoFrame] = OrderedDict()
        frame_bytes = max(1, self.coded_width * self.coded_height * 3 // 2)
        self.chunk_frames = max(4, cache_bytes // frame_bytes)
        try:
            self._keyframes = sorted(e.timestamp for e in self._stream.index_entries if e.is_keyframe)
        except Exception:  # demuxers without an index (or older PyAV): always seek
            self._keyframes = []
        self._restart(0)
        first = self._peek_first()
        self.rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
        self.width, self.height = (first.width, first.height)
        if self.rotation in (90, 270):
            self.width, self.height = self.height, self.width

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._cache.clear()
        self._decoder = None
        self._container.close()

    # -- low level ---------------------------------------------------------------------------
    def _restart(self, index: int) -> None:
        """Position the decoder at the keyframe at or before ``index``."""
        if index <= 0 or self._pts0 is None:
            self._container.seek(0, stream=self._stream, backward=True)
            self._next_index = 0 if index <= 0 else -1
        else:
            target = self._pts0 + int(round(index / self.fps / self.time_base))
            self._container.seek(target, stream=self._stream, backward=True)
            self._next_index = -1  # unknown until the first frame arrives
        self._decoder = self._container.decode(self._stream)
        self._pending: av.VideoFrame | None = None

    def _peek_first(self) -> av.VideoFrame:
        frame = next(self._decoder)
        self._pts0 = frame.pts if frame.pts is not None else 0
        self._pending = frame
        return frame

    def _index_of(self, frame: av.VideoFrame) -> int:
        if frame.pts is None or self._pts0 is None:
            return self._next_index
        return int(round(float((frame.pts - self._pts0) * self.time_base) * self.fps))

    def _decode_next(self) -> tuple[int, av.VideoFrame] | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            try:
                frame = next(self._decoder)
            except StopIteration:
                return None
        index = self._index_of(frame)
        if index < 0:
            index = max(self._next_index, 0)
        self._next_index = index + 1
        return index, frame

    # -- public ----------------------------------------------------------------------------
    def frames(self, indices: Iterable[int]) -> Iterator[av.VideoFrame]:
        """Decoded frames (as stored: rotation not applied) for any sequence of indices."""
        last: av.VideoFrame | None = None
        for wanted in indices:
            wanted = min(max(int(wanted), 0), self.frame_count - 1)
            frame = self._cache.get(wanted)
            if frame is None:
                frame = self._fetch(wanted)
            if frame is None:  # past the real end (frame count overestimated): hold the last
                frame = last
            if frame is None:
                raise unreadable_error(sniff_type(self.path))
            last = frame
            yield frame

    def _keyframe_before(self, index: int) -> int | None:
        """Index of the last keyframe at or before ``index`` (None when the file has no index)."""
        if not self._keyframes or self._pts0 is None:
            return None
        target = self._pts0 + index / self.fps / float(self.time_base)
        at = bisect.bisect_right(self._keyframes, target + 0.5 / self.fps / float(self.time_base)) - 1
        if at < 0:
            return 0
        return int(round(float((self._keyframes[at] - self._pts0) * self.time_base) * self.fps))

    def _fetch(self, wanted: int) -> av.VideoFrame | None:
        ahead = wanted - self._next_index
        jump = self._next_index < 0 or ahead < 0 or ahead > self.chunk_frames
        if jump and ahead > 0 and self._next_index >= 0:
            # Forward beyond the cache: seeking only pays if a keyframe lies past where the
            # decoder already is (files with sparse keyframes would otherwise restart far back).
            keyframe = self._keyframe_before(wanted)
            jump = keyframe is None or keyframe > self._next_index
        if jump:
            # Backward (or far) jump: load the chunk that ends at ``wanted`` so the reverse run
            # that usually follows is served from memory.
            lower: int | None = max(0, wanted - self.chunk_frames + 1)
            self._cache.clear()
            self._restart(lower)
        else:
            lower = None
        found: av.VideoFrame | None = None
        while True:
            item = self._decode_next()
            if item is None:
                break
            index, frame = item
            if lower is not None and index < lower:
                continue
            self._cache[index] = frame
            while len(self._cache) > self.chunk_frames:
                self._cache.popitem(last=False)
            if index >= wanted:
                # A missing source frame (damaged or variable-rate file): show the one before.
                found = self._cache.get(wanted)
                if found is None:
                    earlier = [i for i in self._cache if i < wanted]
                    found = self._cache[max(earlier)] if earlier else frame
                break
        if found is None and self._cache:
            found = self._cache.get(wanted)
            if found is None:
                found = next(reversed(self._cache.values()))
        return found

    def frame_at(self, index: int) -> av.VideoFrame:
        """One decoded frame (rotation not applied), by keyframe seek when that is cheaper."""
        index = min(max(int(index), 0), self.frame_count - 1)
        frame = self._cache.get(index)
        if frame is None:
            frame = self._fetch(index)
        if frame is None:
            raise unreadable_error(sniff_type(self.path))
        return frame

    def iter_sequential(self, *, start_index: int = 0) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) from ``start_index`` to the end, decoding each frame once."""
        self._cache.clear()
        self._restart(start_index)
        while True:
            item = self._decode_next()
            if item is None:
                return
            if item[0] >= start_index:
                yield item

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return frame_to_rgb(frame, rotation=self.rotation)


def iter_video_frames(path: str | os.PathLike, *, start: float = 0.0) -> Iterator[np.ndarray]:
    """Upright RGB uint8 frames from ``start`` seconds on, streamed with threaded decoding."""
    with VideoReader(path) as reader:
        for _, frame in reader.iter_sequential(start_index=int(round(start * reader.fps))):
            yield reader.rgb(frame)


def read_frames_at(path: str | os.PathLike, times: Iterable[float]) -> list[np.ndarray]:
    """One upright RGB frame per time (seconds), each reached by a keyframe seek."""
    out: list[np.ndarray] = []
    with VideoReader(path, cache_bytes=0, threads=False) as reader:
        for t in times:
            out.append(reader.rgb(reader.frame_at(int(round(t * reader.fps)))))
    return out


def sample_times(duration: float, count: int) -> list[float]:
    """``count`` times spread over the clip, avoiding the first and last 5 %."""
    if duration <= 0 or count <= 0:
        return [0.0]
    lo, hi = duration * 0.05, duration * 0.95
    if count == 1:
        return [duration / 2]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]

