"""The order in which a render shows the avatar's footage, and where lip sync stays off.

The one definition of the loop modes (the studio's form and model, the pipeline and lip sync
all read them here), the custom segment, and the intervals of footage whose mouth is left as
recorded. Pure Python: the Django side imports it without loading the engine's media stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from .errors import EngineError, InputRejected

LOOP_MODES = ("reverse", "forward", "circle", "custom")
CUSTOM_MIN_SECONDS = 5.0
MAX_DISABLE_INTERVALS = 5


def _check_loop_mode(loop_mode: str) -> None:
    if loop_mode not in LOOP_MODES:
        choices = ", ".join(LOOP_MODES[:-1]) + " or " + LOOP_MODES[-1]
        raise InputRejected(
            f"Unknown loop mode {loop_mode!r}; choose {choices}.", field="loop_mode", code="loop_mode",
        )


def _ping_pong(position: int, length: int) -> int:
    if length <= 1:
        return 0
    period = 2 * length - 2
    phase = position % period
    return phase if phase < length else period - phase


def segment_frames(n_source: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    """The [first, last) source frames of a start/end segment in seconds (defaults: all)."""
    first = 0 if start is None else int(round(float(start) * fps))
    last = n_source if end is None else int(round(float(end) * fps))
    first = min(max(first, 0), max(n_source - 1, 0))
    last = min(max(last, first + 1), n_source)
    return first, last


def background_indices(
    n_source: int,
    n_out: int,
    *,
    loop_mode: str,
    fps: float,
    start: float | None = None,
    end: float | None = None,
    shown: Sequence[bool] | None = None,
) -> Iterator[int]:
    """The footage frame shown at each of ``n_out`` output frames (same frame rate).

    Within the segment [start, end) seconds (default: the whole footage):

    - ``reverse``: forward, then backward, then forward… (a ping-pong: no jump at the
      turns, and no frame shown twice in a row);
    - ``forward``: forward, then from the segment's start again (a cut at each seam);
    - ``circle``: out and back so the last output frame is the first one (the video loops
      seamlessly); ping-pong inside the segment when the speech is longer;
    - ``custom``: the reverse splice over the chosen segment (Tencent's MakeType Custom).

    ``shown`` (one bool per footage frame, e.g. ``lipsync.showable_frames``): the frames a
    render may show. The others are skipped as if they had been cut out of the footage (a
    frame whose own mouth cannot be replaced would show the footage's mouth moving to other
    words); when none of the segment's frames may be shown, the segment plays whole.
    """
    _check_loop_mode(loop_mode)
    if n_source <= 0:
        raise EngineError("The avatar footage has no frames.")
    first, last = segment_frames(n_source, fps, start, end)
    frames = list(range(first, last))
    if shown is not None:
        kept = [i for i in frames if i < len(shown) and shown[i]]
        frames = kept or frames
    length = len(frames)
    for k in range(max(0, n_out)):
        if loop_mode == "forward":
            offset = k % length
        elif loop_mode == "circle":
            offset = _ping_pong(min(k, n_out - 1 - k), length)
        else:
            offset = _ping_pong(k, length)
        yield frames[offset]


def frame_index_sequence(
    n_source: int, n_out: int, loop_mode: str, *, fps: float = 25.0, start: float | None = None,
    end: float | None = None, shown: Sequence[bool] | None = None,
) -> Iterator[int]:
    """``background_indices`` with the loop mode as the third positional argument."""
    return background_indices(n_source, n_out, loop_mode=loop_mode, fps=fps, start=start, end=end, shown=shown)


def resampled_sequence(
    n_source: int, n_out: int, loop_mode: str, src_fps: float, out_fps: float, *, start: float | None = None,
    end: float | None = None, shown: Sequence[bool] | None = None,
) -> Iterator[int]:
    """``background_indices`` for an output frame rate other than the footage's: each output
    frame shows the nearest earlier position of the footage's own sequence."""
    if abs(src_fps - out_fps) < 1e-6:
        yield from frame_index_sequence(n_source, n_out, loop_mode, fps=src_fps, start=start, end=end, shown=shown)
        return
    if n_out <= 0:
        return
    positions = int(math.floor((n_out - 1) * src_fps / out_fps + 1e-9)) + 1
    sequence = list(frame_index_sequence(n_source, positions, loop_mode, fps=src_fps, start=start, end=end,
                                         shown=shown))
    for k in range(n_out):
        yield sequence[min(len(sequence) - 1, int(math.floor(k * src_fps / out_fps + 1e-9)))]


def check_render_options(
    *,
    loop_mode: str,
    footage_seconds: float | None = None,
    segment_start: float | None = None,
    segment_end: float | None = None,
    disable_intervals: Sequence[Sequence[float]] = (),
) -> list[tuple[float, float]]:
    """Refuse bad loop/segment/interval options with a sentence; return the intervals."""
    _check_loop_mode(loop_mode)
    for name, value in (("start", segment_start), ("end", segment_end)):
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
            raise InputRejected(f"The segment {name} must be a number of seconds, 0 or more.",
                                field="segment_" + name, code="segment_value")
    if loop_mode == "custom":
        if segment_start is None or segment_end is None:
            raise InputRejected(
                f"A custom segment needs a start and an end time, at least {CUSTOM_MIN_SECONDS:.0f} s apart.",
                field="segment_start", code="segment_missing",
            )
        if segment_end - segment_start < CUSTOM_MIN_SECONDS - 1e-9:
            raise InputRejected(
                f"The custom segment is {max(0.0, segment_end - segment_start):.1f} s long; "
                f"choose a start and end at least {CUSTOM_MIN_SECONDS:.0f} s apart.",
                field="segment_end", code="segment_short",
            )
    if segment_start is not None and segment_end is not None and segment_end <= segment_start:
        raise InputRejected("The segment must end after it starts.", field="segment_end", code="segment_order")
    if footage_seconds is not None:
        if segment_start is not None and segment_start >= footage_seconds:
            raise InputRejected(
                f"The segment starts at {segment_start:.1f} s but the avatar's video is only "
                f"{footage_seconds:.1f} s long.", field="segment_start", code="segment_outside",
            )
        if segment_end is not None and segment_end > footage_seconds + 0.05:
            raise InputRejected(
                f"The segment ends at {segment_end:.1f} s but the avatar's video is only "
                f"{footage_seconds:.1f} s long.", field="segment_end", code="segment_outside",
            )
    return check_disable_intervals(disable_intervals)


def check_disable_intervals(intervals: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """At most 5 [start, end] pairs in seconds of the avatar's footage, in chronological
    order and not overlapping (Tencent's DisableIntervals)."""
    intervals = list(intervals or [])
    if len(intervals) > MAX_DISABLE_INTERVALS:
        raise InputRejected(
            f"You gave {len(intervals)} intervals without lip sync; at most {MAX_DISABLE_INTERVALS} are allowed.",
            field="disable_intervals", code="intervals_too_many",
        )
    out: list[tuple[float, float]] = []
    for number, pair in enumerate(intervals, start=1):
        try:
            start, end = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise InputRejected(
                f"Interval {number} must be a pair of times in seconds, like [1.5, 3].",
                field="disable_intervals", code="intervals_format",
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise InputRejected(
                f"Interval {number} must start at 0 s or later and end after it starts.",
                field="disable_intervals", code="intervals_order",
            )
        if out and start < out[-1][1]:
            raise InputRejected(
                "List the intervals without lip sync in chronological order, without overlaps "
                f"(interval {number} starts before interval {number - 1} ends).",
                field="disable_intervals", code="intervals_order",
            )
        out.append((start, end))
    return out


def disabled_frames(intervals: Sequence[tuple[float, float]], fps: float) -> Callable[[int], bool]:
    """Whether footage frame ``index`` lies in one of the (checked) intervals, ends included."""
    spans = [(int(math.floor(s * fps + 1e-6)), int(math.ceil(e * fps - 1e-6))) for s, e in intervals]

    def disabled(index: int) -> bool:
        return any(first <= index <= last for first, last in spans)

    return disabled
