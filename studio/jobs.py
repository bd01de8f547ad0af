"""The job model shared by avatars and renders: the database row is the truth.

A task claims its row with a conditional UPDATE (so two workers never run the same job),
heartbeats while it works, and writes progress at most every `PROGRESS_EVERY` seconds. Every
later state change is guarded by the status the caller expects, so a job that was cancelled
or swept meanwhile is never overwritten. Each app schedules its own sweep with `job_sweep`.
"""

import logging
import re
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from studio.models import Team

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5
# The time left is shown only once the timed stage has run this long and got this far: the
# first moments of a stage (loading models, the first batch) say little about its pace.
ETA_MIN_SECONDS = 3.0
ETA_MIN_FRACTION = 0.03
# How far each write moves the shown estimate towards the new one, so one slow batch
# nudges it rather than making it leap.
ETA_SMOOTHING = 0.3
RESTARTING = "restarting"  # the stage a swept job waits in, so its page says why it went back
SCRATCH_NAME = re.compile(r"^(?P<model>[a-z]+)-(?P<pk>[0-9a-f-]{36})-(?P<attempt>\d+)(?:-[0-9a-f]{8})?$")
STOPPED_RESPONDING = "The worker stopped responding {n} times; retry, or contact your admin if it keeps happening."
# Infrastructure hiccups (a locked SQLite file, a storage endpoint that dropped a connection)
# that say nothing about the job itself: the task is retried with backoff instead of failing.
TRANSIENT_ERRORS = (OperationalError, BotoCoreError, ConnectionError, TimeoutError)
TRANSIENT_RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "max_retries": 5,
}


class TeamOwnedJob(models.Model):
    """A team's object that a worker builds: its owner, its files' key prefix, its job state."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, models.CASCADE, related_name="%(class)ss")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+"
    )
    stage = models.CharField(max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    TERMINAL: list[str] = []

    class Meta:
        abstract = True

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def key_prefix(self) -> str:
        """Where this object's files live in storage; the media view authorises by it."""
        return f"teams/{self.team_id}/{self._meta.app_label}/{self.pk}/"


def job_claim(model, *, pk, from_statuses: list[str], to_status: str) -> bool:
    """Atomically move a row into its running status; False if another worker has it."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, status__in=from_statuses).update(
            status=to_status,
            updated_at=now,
            stage="",
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=now,
            error="",
        )
    )


class ProgressReporter:
    """Turns the engine's (stage, fraction) callbacks into throttled row updates.

    `weights` maps each engine stage to its share of the whole job so the bar moves
    monotonically across stages. `running_status` guards each write: a row that was
    cancelled (or swept) meanwhile is not overwritten, and `should_cancel` reports it.

    The time left (for models with `eta_seconds`) is timed on the heaviest stage alone (a
    render's frames): the weights are only rough shares, and the short stages before it run
    far faster than theirs say, so a whole-job rate promised "2 s left" at 9 % and 37 s at 13 %.
    """

    def __init__(self, model, pk, *, running_status: str, weights: dict[str, float], claim: Q = Q()):
        self.model = model
        self.claim = claim
        self.pk = pk
        self.running_status = running_status
        self.weights = weights
        self.stage_offsets = {}
        offset = 0.0
        for stage, weight in weights.items():
            self.stage_offsets[stage] = offset
            offset += weight
        self.total = offset or 1.0
        self.last_write = 0.0
        self.last_stage = ""
        self.still_running = True
        self.eta_stage = max(weights, key=weights.get) if weights else ""
        self.eta_clock: tuple[float, float] | None = None  # (when, fraction) the timed stage began
        self.eta_fraction = 0.0
        self.pace: float | None = None  # seconds per unit of weight, as the timed stage ran
        self.eta: float | None = None
        self.eta_at = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        fraction = min(max(fraction, 0.0), 1.0)
        if stage == self.eta_stage:
            # Timed from its first report, throttled or not; a stage that starts over (a retry
            # reporting from zero) starts its clock over too, though a hair's jitter does not.
            if self.eta_clock is None or fraction < self.eta_fraction - 0.01:
                self.eta_clock, self.pace = (now, fraction), None
            self.eta_fraction = fraction
        if stage == self.last_stage and now - self.last_write < PROGRESS_EVERY:
            return
        self.last_stage = stage
        self.last_write = now
        done = self.stage_offsets.get(stage, 0.0) + self.weights.get(stage, 0.0) * fraction
        percent = int(99 * done / self.total)
        updates = {"stage": stage, "heartbeat_at": timezone.now()}
        if hasattr(self.model, "eta_seconds"):
            eta = self._eta(stage, fraction, done, now)
            updates["eta_seconds"] = None if eta is None else round(eta)
        # One guarded UPDATE per tick: progress only moves forward (a retried stage may report
        # from zero again), and zero rows updated means the job was cancelled or swept.
        self.still_running = bool(
            self.model.objects.filter(self.claim, pk=self.pk, status=self.running_status).update(
                progress=Greatest("progress", Value(percent)), **updates
            )
        )

    def _eta(self, stage: str, fraction: float, done: float, now: float) -> float | None:
        """Seconds left at the timed stage's pace, smoothed; None until that pace is known.

        The stages after it are assumed to go at its pace, by their weights; the ones before
        it show nothing, since what they took says nothing about the long stage to come.
        """
        if stage == self.eta_stage and self.eta_clock is not None:
            began_at, began_fraction = self.eta_clock
            spent, covered = now - began_at, fraction - began_fraction
            if spent >= ETA_MIN_SECONDS and covered >= ETA_MIN_FRACTION:
                self.pace = spent / (covered * self.weights[stage])
        elif self.stage_offsets.get(stage, -1.0) <= self.stage_offsets.get(self.eta_stage, 0.0):
            self.pace = None  # before the timed stage, or a stage we hold no weight for
        if self.pace is None:
            self.eta = None
            return None
        fresh = (self.total - done) * self.pace
        if self.eta is None:
            self.eta = fresh
        else:
            # What the last estimate says now, moved part of the way towards the fresh one.
            expected = max(self.eta - (now - self.eta_at), 0.0)
            self.eta = expected + ETA_SMOOTHING * (fresh - expected)
        self.eta_at = now
        return self.eta

    def should_cancel(self) -> bool:
        if time.monotonic() - self.last_write >= PROGRESS_EVERY:
            self.still_running = self.model.objects.filter(
                self.claim, pk=self.pk, status=self.running_status
            ).exists()
            self.last_write = time.monotonic()
        return not self.still_running


class Heartbeat:
    """Beat a running job's row from a thread, whatever the engine is busy with.

    Some stages (speech recognition of a long track, one huge frame) go quiet for longer than
    the sweep's threshold; without this a live job would be re-queued under its own worker.
    """

    def __init__(self, model, pk, *, running_statuses: list[str], claim: Q = Q()):
        self.model, self.pk, self.running_statuses, self.claim = model, pk, running_statuses, claim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{pk}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    self.model.objects.filter(self.claim, pk=self.pk, status__in=self.running_statuses).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # one missed beat (a locked database) is no reason to stop beating
                    log.warning("heartbeat of %s %s missed a beat", self.model.__name__, self.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


@contextmanager
def job_scratch(model, *, pk, attempt: int, running_statuses: list[str]) -> Iterator[Path]:
    """A private working folder for one attempt at a job, removed when the attempt ends.

    A worker killed mid-job cannot clean up after itself, so entering also removes the folders
    of this kind of job that no running attempt owns any more (as does the sweep).
    """
    root = Path(settings.JOB_SCRATCH_DIR)
    root.mkdir(parents=True, exist_ok=True)
    scratch_sweep(model, running_statuses=running_statuses)
    # The random part keeps two workers apart should both ever hold the same attempt.
    path = root / f"{model._meta.model_name}-{pk}-{attempt}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def scratch_sweep(model, *, running_statuses: list[str]) -> int:
    """Remove this machine's scratch folders whose attempt is no longer running."""
    root = Path(settings.JOB_SCRATCH_DIR)
    if not root.is_dir():
        return 0
    prefix = model._meta.model_name
    owners = {}
    for folder in root.iterdir():
        match = SCRATCH_NAME.match(folder.name)
        if match and match["model"] == prefix:
            owners[folder] = (match["pk"], int(match["attempt"]))
    running = {
        (str(pk), attempts)
        for pk, attempts in model.objects.filter(
            pk__in={pk for pk, _ in owners.values()}, status__in=running_statuses
        ).values_list("pk", "attempts")
    }
    removed = 0
    for folder, owner in owners.items():
        if owner not in running:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _stale() -> Q:
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)


def stale_rows(model, *, running_statuses: list[str]):
    return model.objects.filter(status__in=running_statuses).filter(_stale())


def job_update(model, *, pk, from_statuses: list[str], only_if: Q | None = None, **fields) -> bool:
    """Change a job row only if it is still in one of `from_statuses` (and matches `only_if`);
    False if it moved on. `updated_at` moves too: `.update()` skips `auto_now`."""
    rows = model.objects.filter(pk=pk, status__in=from_statuses)
    if only_if is not None:
        rows = rows.filter(only_if)
    return bool(rows.update(updated_at=timezone.now(), **fields))


def job_fail(model, *, pk, from_statuses: list[str], message: str, **fields) -> bool:
    return job_update(
        model, pk=pk, from_statuses=from_statuses, status="failed", error=message,
        finished_at=timezone.now(), **fields,
    )


def job_release(model, *, pk, from_statuses: list[str], entry_status: str, only_if: Q | None = None) -> bool:
    """Hand a claimed job back to the queue (its task will be retried), keeping its attempt count."""
    return job_update(
        model, pk=pk, from_statuses=from_statuses, only_if=only_if, status=entry_status,
        attempts=F("attempts") - 1,
    )


def job_claimed_by(row) -> Q:
    """The claim a worker holds: the row as its own claim left it.

    A retried job starts again from attempt 0, so the attempt number alone does not tell two
    claims apart; the claim's start time does. Every write of a running job is guarded by it,
    so a worker that lost its job (cancelled and restarted, or swept while still alive) can
    no longer touch the attempt that replaced it.
    """
    return Q(started_at=row.started_at)


def job_sweep(
    model,
    *,
    running_statuses: list[str],
    entry_status: str,
    enqueue: Callable[[object], None],
    on_swept: Callable[[object, str], None] | None = None,
) -> dict[str, int]:
    """Re-queue jobs whose worker went silent, fail those out of attempts, resend lost ones.

    `on_swept(pk, what)` lets an app record what happened (renders keep an event timeline).
    """
    counts = {"requeued": 0, "failed": 0}
    still_stale = _stale()  # a beat that lands after the read below saves the job
    for row in stale_rows(model, running_statuses=running_statuses):
        with transaction.atomic():
            if row.attempts >= settings.JOB_MAX_ATTEMPTS:
                moved = job_fail(
                    model, pk=row.pk, from_statuses=[row.status], only_if=still_stale,
                    message=STOPPED_RESPONDING.format(n=row.attempts),
                )
                counts["failed"] += moved
            else:
                moved = job_update(
                    model, pk=row.pk, from_statuses=[row.status], only_if=still_stale, status=entry_status,
                    stage=RESTARTING, progress=0,
                )
                if moved:
                    transaction.on_commit(lambda pk=row.pk: enqueue(pk))
                counts["requeued"] += moved
            if moved and on_swept is not None:
                on_swept(row.pk, f"attempt {row.attempts}")
    counts["requeued"] += _requeue_forgotten(model, entry_status, enqueue)
    counts["scratch_removed"] = scratch_sweep(model, running_statuses=running_statuses)
    return counts


def _requeue_forgotten(model, entry_status: str, enqueue: Callable[[object], None]) -> int:
    """Send again the jobs that have waited suspiciously long in their entry status.

    A broker that lost its messages (say, a restarted embedded Redis) must not leave rows
    queued forever. A duplicate message is harmless: the task's claim lets only one run.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_REQUEUE_WAITING_AFTER_SECONDS)
    waiting = list(
        model.objects.filter(status=entry_status, updated_at__lt=cutoff).values_list("pk", flat=True)[:500]
    )
    if waiting:
        model.objects.filter(pk__in=waiting, status=entry_status).update(updated_at=timezone.now())
        for pk in waiting:
            enqueue(pk)
    return len(waiting)
