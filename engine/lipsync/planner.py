"""Unit selection: which footage frame's mouth to show at each output frame.

Viterbi over candidate units (target cost: distance to the predicted mouth state +
viseme-context mismatch + pose mismatch with the background frame + a reuse penalty; join
cost: 0 for consecutive source frames, else lip-landmark and appearance distance), in
windows of two seconds with lookahead, so source reads are mostly sequential.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import EngineError
from ..visemes import phoneme_to_visemes
from .library import CLOSED_APERTURE, K_LIPS, STATE_WEIGHTS, VISEME_ORDER, Library
from .mouth_model import VISEME_CLASSES, exact_timing


@dataclass
class SelectionWeights:
    context: float = 0.45  # viseme class heard at the unit ≠ the target's (script: exact labels)
    # … for recognised speech, whose labels are often wrong; its model already reads them
    context_recognised: float = 0.1
    pose: float = 0.6  # per (10°)² of yaw/pitch difference with the background frame
    closure: float = 6.0  # a p/b/m frame given an open mouth
    reuse: float = 0.015  # per earlier use of the same source frame
    jump: float = 0.8  # any non-consecutive join
    join_lips: float = 1.0  # × lip-shape distance (normalised) at a join
    join_appearance: float = 0.5  # × appearance distance (normalised) at a join
    hold: float = 0.5  # showing the same source frame twice
    skip: float = 0.25  # skipping one source frame
    window: int = 48  # frames committed per Viterbi pass
    lookahead: int = 24
    candidates: int = 24


@dataclass
class Choice:
    """What one output frame shows."""

    unit: int  # library frame whose mouth is shown
    fade_from: int = -1  # library frame to cross-fade from (the previous unit's successor)
    fade: float = 0.0  # weight of fade_from
    closed: bool = False  # the target wants the lips pressed together here


BIG_JOIN = 1.5  # weighted lip + appearance distance above which a cut fades over two frames
# Which frames close the lips for a recognised p/b/m: when the sound is heard ("audio"), when
# this speaker's mouth closes relative to their sound in the footage ("mouth"), both
# ("union"), the speaker's own timing held until the sound's first closed frame ("bridge"), or
# the speaker's own timing as far as the closure still reaches its bilabial's sound ("window":
# ending no earlier than ``SEEN_LATE_S`` before it). Every frame forced shut against the
# prediction costs aperture r where the recogniser's p/b/m is wrong or the speaker closes
# early; "bridge" shut a third to two thirds more frames than "window" on every split of the
# clip we have.
CLOSURE_TIMING = "window"
# Lips that close this long before a bilabial's sound still look in time with it (viewers
# notice sound leading the picture from about 45 ms: ITU-R BT.1359).
SEEN_LATE_S = 0.040


def _closed_into_sound(at_audio: np.ndarray, phonemes, fps: float, lag: int) -> np.ndarray:
    """Each closure heard at ``at_audio`` (runs of p/b/m frames), moved earlier by the
    speaker's own lead (``lag`` frames) as far as it still reaches its bilabial's sound:
    its last frame no earlier than ``SEEN_LATE_S`` before the sound starts."""
    count = len(at_audio)
    closed = np.zeros(count, bool)
    events = [(event.start, event.end) for event in phonemes
              if "PP" in phoneme_to_visemes(event.phoneme, "arpabet")[0]]
    starts = np.flatnonzero(at_audio & ~np.concatenate([[False], at_audio[:-1]]))
    ends = np.flatnonzero(at_audio & ~np.concatenate([at_audio[1:], [False]])) + 1
    for first, end in zip(starts, ends):
        heard = [start for start, stop in events
                 if start < end / fps + SEEN_LATE_S and stop > first / fps - SEEN_LATE_S]
        # the latest of them: a run can hold two bilabials ("mp"), and must reach both
        seen = int(math.ceil((max(heard) - SEEN_LATE_S) * fps - 1e-9)) if heard else end - 1
        shift = int(np.clip(end - 1 - seen, 0, min(lag, first)))  # … and never before the first frame
        closed[first - shift : end - shift] = True
    return closed


class Planner:
    """Viterbi over candidate units, window by window with lookahead."""

    def __init__(self, library: Library, predicted: np.ndarray, trajectory, backgrounds: list[int],
                 weights: SelectionWeights | None = None):
        self.w = weights or SelectionWeights()
        lib = library
        self.units = np.flatnonzero(lib.usable)
        if len(self.units) == 0:
            raise EngineError("The avatar's footage has no usable mouth frames; record a new video.")
        mean = np.asarray(lib.meta["state_mean"], np.float32)
        std = np.asarray(lib.meta["state_std"], np.float32)
        self.unit_state = (lib.state[self.units] - mean) / std
        self.target = (np.asarray(predicted, np.float32) - mean) / std
        self.T = len(backgrounds)
        fps = trajectory.fps
        exact = exact_timing(trajectory)
        self.context_weight = self.w.context if exact else self.w.context_recognised
        lag = 0 if exact else int(round(lib.meta.get("av_offset_ms", 0.0) / 1000.0 * fps))
        lag = max(0, min(lag, int(0.2 * fps)))
        classes = np.array([VISEME_CLASSES.get(v, 0) for v in VISEME_ORDER] + [-1], np.int8)
        unit_visemes = lib.visemes[np.clip(self.units + lag, 0, lib.frame_count - 1)]
        self.unit_class = classes[unit_visemes]
        labels = list(trajectory.visemes) + ["sil"] * max(0, self.T + lag - trajectory.frame_count)
        self.target_class = np.array([VISEME_CLASSES.get(labels[min(t + lag, len(labels) - 1)], 0)
                                      for t in range(self.T)], np.int8)
        pp = np.array([label == "PP" for label in labels] + [False] * (self.T + lag + 1), bool)
        at_audio = pp[: self.T]
        at_mouth = pp[lag : lag + self.T]
        if CLOSURE_TIMING == "audio" or exact:
            self.closed_target = at_audio
        elif CLOSURE_TIMING == "mouth":
            self.closed_target = at_mouth
        elif CLOSURE_TIMING == "union":
            self.closed_target = at_audio | at_mouth
        elif CLOSURE_TIMING == "window":
            self.closed_target = _closed_into_sound(at_audio, trajectory.phonemes, fps, lag)
        else:  # "bridge": the speaker's own timing, held until the sound's first closed frame
            closed = at_mouth.copy()
            starts = np.flatnonzero(at_audio & ~np.concatenate([[False], at_audio[:-1]]))
            for start in starts:
                closed[max(0, start - lag) : start + 1] = True
            self.closed_target = closed
        self.unit_closed = lib.state[self.units, 0] <= float(lib.meta.get("closed_threshold", CLOSED_APERTURE))
        if self.unit_closed.any():
            # a p/b/m wants this speaker's closed mouth, whatever the smooth prediction says
            closed_state = np.median(self.unit_state[self.unit_closed], axis=0)
            self.target[self.closed_target[: len(self.target)]] = closed_state
        bg = np.clip(np.asarray(backgrounds, np.int64), 0, lib.frame_count - 1)
        self.bg_pose = lib.pose[bg, :2]
        self.bg_ok = lib.ok[bg]
        self.unit_pose = lib.pose[self.units, :2]
        lips = lib.points[self.units][:, K_LIPS, :] / lib.iod
        lips = lips - lips.mean(axis=1, keepdims=True)
        self.unit_lips = lips.reshape(len(self.units), -1)
        self.unit_app = lib.appearance[self.units]
        # successor unit (the next footage frame, when it is a unit too)
        position = np.full(lib.frame_count + 2, -1, np.int64)
        position[self.units] = np.arange(len(self.units))
        self.succ = position[np.minimum(self.units + 1, lib.frame_count + 1)]
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, len(self.units), (2, 400))
        self.lip_scale = float(np.median(((self.unit_lips[a] - self.unit_lips[b]) ** 2).sum(axis=1))) + 1e-6
        self.app_scale = float(np.median(((self.unit_app[a] - self.unit_app[b]) ** 2).sum(axis=1))) + 1e-6
        # one vector per unit whose squared distances are the weighted join distances
        self.join_features = np.hstack([
            self.unit_lips * math.sqrt(self.w.join_lips / self.lip_scale),
            self.unit_app * math.sqrt(self.w.join_appearance / self.app_scale),
        ]).astype(np.float64)
        self.join_norms = (self.join_features**2).sum(axis=1)
        self.usage = np.zeros(len(self.units), np.float32)

    def _target_costs(self, t0: int, t1: int) -> np.ndarray:
        w = self.w
        diff = self.target[t0:t1, None, :] - self.unit_state[None, :, :]
        cost = (diff**2 * STATE_WEIGHTS).sum(axis=2)
        cost += self.context_weight * (self.target_class[t0:t1, None] != self.unit_class[None, :])
        pose = ((self.bg_pose[t0:t1, None, :] - self.unit_pose[None, :, :]) / 10.0) ** 2
        cost += w.pose * pose.sum(axis=2) * self.bg_ok[t0:t1, None]
        cost += w.closure * (self.closed_target[t0:t1, None] & ~self.unit_closed[None, :])
        cost += w.reuse * np.minimum(self.usage, 40.0)[None, :]
        return cost

    def _join(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Join cost matrix (len(prev) × len(cur)) between unit positions."""
        w = self.w
        succ = self.succ[prev]
        natural = np.where(succ >= 0, succ, prev)
        # squared distances as |a|² + |b|² - 2ab: one small matrix product each
        feats = self.join_features
        a, b = feats[natural], feats[cur]
        sq = self.join_norms
        cost = w.jump + np.maximum(sq[natural][:, None] + sq[cur][None, :] - 2.0 * (a @ b.T), 0.0)
        cost[succ[:, None] == cur[None, :]] = 0.0
        cost[prev[:, None] == cur[None, :]] = w.hold
        succ2 = np.where(succ >= 0, self.succ[np.maximum(succ, 0)], -1)
        skip = (succ2[:, None] == cur[None, :]) & (succ2[:, None] >= 0)
        cost[skip] = np.minimum(cost[skip], w.skip)
        return cost

    def plan(self) -> Iterator[Choice]:
        w = self.w
        t = 0
        previous_choice: int | None = None
        fading: tuple[int, float] | None = None  # the second frame of a two-frame cross-fade
        while t < self.T:
            t1 = min(self.T, t + w.window + w.lookahead)
            costs = self._target_costs(t, t1)
            k = min(w.candidates, costs.shape[1])
            top = np.argpartition(costs, k - 1, axis=1)[:, :k]
            states: list[np.ndarray] = []
            backs: list[np.ndarray] = []
            if previous_choice is None:
                cur = top[0]
                acc = costs[0, cur]
            else:
                prev = np.array([previous_choice])
                cur = np.unique(np.concatenate([top[0], self.succ[prev][self.succ[prev] >= 0]]))
                acc = costs[0, cur] + self._join(prev, cur)[0]
            states.append(cur)
            backs.append(np.zeros(len(cur), np.int64))
            for step in range(1, t1 - t):
                prev = states[-1]
                best_prev = prev[np.argsort(acc)[:k]]
                extra = self.succ[best_prev]
                cur = np.unique(np.concatenate([top[step], extra[extra >= 0]]))
                total = acc[:, None] + self._join(prev, cur)
                back = np.argmin(total, axis=0)
                acc = total[back, np.arange(len(cur))] + costs[step, cur]
                states.append(cur)
                backs.append(back)
            # backtrack
            path = np.empty(t1 - t, np.int64)
            j = int(np.argmin(acc))
            for step in range(t1 - t - 1, -1, -1):
                path[step] = states[step][j]
                j = int(backs[step][j])
            commit = path[: min(w.window, t1 - t)] if t1 < self.T else path
            for offset, unit in enumerate(commit):
                index = t + offset
                choice = Choice(unit=int(self.units[unit]), closed=bool(self.closed_target[index]))
                quiet = not choice.closed and not (index > 0 and self.closed_target[index - 1])
                if previous_choice is not None:
                    succ = self.succ[previous_choice]
                    if unit != succ and unit != previous_choice and succ >= 0 and quiet:
                        # A cut between source frames: show half of where the old run was
                        # going; after a big jump, a quarter of it once more the frame after.
                        choice.fade_from, choice.fade = int(self.units[succ]), 0.5
                        fading = None
                        after = self.succ[succ]
                        distance = float(((self.join_features[succ] - self.join_features[unit]) ** 2).sum())
                        if after >= 0 and distance > BIG_JOIN:
                            fading = (int(self.units[after]), 0.25)
                    elif fading is not None and quiet and unit == self.succ[previous_choice]:
                        choice.fade_from, choice.fade = fading
                        fading = None
                    else:
                        fading = None
                self.usage[unit] += 1.0
                previous_choice = int(unit)
                yield choice
            t += len(commit)
