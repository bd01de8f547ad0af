"""Progress and cancel plumbing, defined once for every stage of the engine.

Callers hand the engine two plain callables: ``progress(stage, fraction)`` and
``should_cancel() -> bool``. Both may hit a database (the studio's job rows), so the engine
calls them through the throttles below, never once per frame.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from .errors import Cancelled

ProgressFn = Callable[[str, float], None]  # (stage, fraction 0..1 of that stage)
CancelFn = Callable[[], bool]

PROGRESS_EVERY_SECONDS = 0.5
CANCEL_CHECK_SECONDS = 0.25


def report_progress(progress: ProgressFn | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, min(1.0, max(0.0, fraction)))


class ProgressThrottle:
    """Report one stage's fraction at most every ``interval`` seconds (or when forced)."""

    def __init__(self, progress: ProgressFn | None, stage: str, interval: float = PROGRESS_EVERY_SECONDS):
        self.progress, self.stage, self.interval = progress, stage, interval
        self._last = -math.inf

    def __call__(self, fraction: float, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            report_progress(self.progress, self.stage, fraction)


class CancelCheck:
    """Ask ``should_cancel`` at most every 0.25 s and raise :class:`Cancelled` when it says so."""

    def __init__(self, should_cancel: CancelFn | None, message: str):
        self._fn = should_cancel
        self._message = message
        self._last = -math.inf

    def __call__(self, *, force: bool = False) -> None:
        if self._fn is None:
            return
        now = time.monotonic()
        if force or now - self._last >= CANCEL_CHECK_SECONDS:
            self._last = now
            if self._fn():
                raise Cancelled(self._message)

    def as_fn(self) -> CancelFn:
        """The throttled check as a plain ``should_cancel`` for code that wants a bool."""

        def check() -> bool:
            try:
                self()
            except Cancelled:
                return True
            return False

        return check


class StageTicker:
    """One stage's throttled progress and cancel check in a single call per unit of work."""

    def __init__(self, progress: ProgressFn | None, should_cancel: CancelFn | None, *, stage: str, message: str):
        self.progress = ProgressThrottle(progress, stage)
        self.cancel = CancelCheck(should_cancel, message)

    def __call__(self, fraction: float, *, force: bool = False) -> None:
        self.progress(fraction, force=force)
        self.cancel(force=force)
