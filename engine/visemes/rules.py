"""The hard rules applied after blending: closed bilabials, minimum runs, rest in silence.

Every bilabial gets fully closed frames in the ``CLOSURE_MIN``–``CLOSURE_MAX`` before its
release; every viseme run lasts at least ``MIN_RUN`` frames; inside pauses the mouth settles
at rest within ``RELAX_TIME``.
"""

from __future__ import annotations

import numpy as np

from .mapping import REST
from .segments import Segment

RELAX_TIME = 0.100  # how long the mouth takes to settle at rest in a pause
CLOSURE_MIN, CLOSURE_MAX = 0.040, 0.120  # lips close this long before a bilabial release
MIN_RUN = 2  # frames


def frame_labels(segments: list[Segment], frame_times: np.ndarray) -> list[str]:
    starts = np.array([s.start for s in segments])
    indices = np.clip(np.searchsorted(starts, frame_times, side="right") - 1, 0, len(segments) - 1)
    return [segments[i].viseme for i in indices]


def closure_frames(segments: list[Segment], frame_times: np.ndarray, fps: float) -> set[int]:
    """Frames to close fully: those in the 40–120 ms before each bilabial's release."""
    closed: set[int] = set()
    for segment in segments:
        if segment.viseme != "PP":
            continue
        hold = min(max(segment.duration, CLOSURE_MIN), CLOSURE_MAX)
        window_start, window_end = segment.end - hold, segment.end
        inside = np.flatnonzero((frame_times >= window_start) & (frame_times < window_end))
        if inside.size:
            closed.update(int(i) for i in inside)
        else:  # the frame nearest the middle of the closure
            middle = (window_start + window_end) / 2
            closed.add(int(np.clip(round(middle * fps), 0, len(frame_times) - 1)))
    return closed


def _runs(labels: list[str]) -> list[list]:
    runs: list[list] = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    return runs


def _coalesce(runs: list[list]) -> list[list]:
    merged: list[list] = []
    for label, length in runs:
        if merged and merged[-1][0] == label:
            merged[-1][1] += length
        elif length > 0:
            merged.append([label, length])
    return merged


def enforce_min_run(labels: list[str]) -> list[str]:
    """No viseme shown for fewer than MIN_RUN frames; a closure (PP) is never dropped.

    A one-frame PP grows into a neighbour that can spare a frame; any other one-frame run
    joins its longer open neighbour, or takes a frame from a closure that can spare one.
    Only a single frame boxed in between two two-frame closures is left: it is the
    open-close transition, and dropping it would hide a vowel.
    """
    runs = _runs(labels)
    stuck: set[int] = set()
    while len(runs) > 1:
        short = [i for i, (_, length) in enumerate(runs) if length < MIN_RUN and i not in stuck]
        if not short:
            break
        index = short[0]
        label = runs[index][0]
        neighbours = [j for j in (index - 1, index + 1) if 0 <= j < len(runs)]
        if label == "PP":
            donors = [j for j in neighbours if runs[j][1] > MIN_RUN]
            if donors:
                donor = donors[0]
                runs[donor][1] -= 1
                runs[index][1] += 1
            else:
                absorb = min(neighbours, key=lambda j: (runs[j][0] == "PP", runs[j][1]))
                runs[index][1] += runs[absorb][1]
                runs[absorb][1] = 0
        else:
            open_neighbours = [j for j in neighbours if runs[j][0] != "PP"]
            if open_neighbours:
                target = max(open_neighbours, key=lambda j: runs[j][1])
                runs[target][1] += runs[index][1]
                runs[index][1] = 0
            else:
                donors = [j for j in neighbours if runs[j][1] > MIN_RUN]
                if donors:
                    runs[donors[0]][1] -= 1
                    runs[index][1] += 1
                elif len(neighbours) == 1:  # at the clip's edge: the closure lasts a frame longer
                    runs[neighbours[0]][1] += runs[index][1]
                    runs[index][1] = 0
                else:
                    stuck.add(index)
                    continue
        runs = _coalesce(runs)
        stuck = set()
    return [label for label, length in runs for _ in range(length)]


def relax_in_silence(
    params: np.ndarray, segments: list[Segment], frame_times: np.ndarray, duration: float
) -> None:
    """Inside pauses the mouth settles at rest within RELAX_TIME of the last/next sound."""
    for segment in segments:
        if segment.viseme != "sil":
            continue
        inside = np.flatnonzero((frame_times >= segment.start) & (frame_times < segment.end))
        if inside.size == 0:
            continue
        t = frame_times[inside]
        since = t - segment.start if segment.start > 1e-9 else np.full(t.shape, np.inf)
        until = segment.end - t if segment.end < duration - 1e-9 else np.full(t.shape, np.inf)
        settled = np.clip(np.minimum(since, until) / RELAX_TIME, 0.0, 1.0)[:, None]
        rest = np.array(REST)[None, :]
        params[inside] = rest + (params[inside] - rest) * (1.0 - settled)
