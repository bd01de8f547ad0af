"""The job model shared by avatars and renders: the database row is the truth.

A task claims its row with a conditional UPDATE (so two workers never run the same job),
heartbeats while it works, and writes progress at most every `PROGRESS_EVERY` seconds.
"""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

PROGRESS_EVERY = 0.5


class JobFields(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stage = models.CharField(max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def job_claim(model, *, pk, from_statuses: list[str], to_status: str) -> bool:
    """Atomically move a row into its running status; False if another worker has it."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, status__in=from_statuses).update(
            status=to_status,
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
    """

    def __init__(self, model, pk, *, running_status: str, weights: dict[str, float]):
        self.model = model
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
        self.started = time.monotonic()

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self.last_stage and now - self.last_write < PROGRESS_EVERY:
            return
        self.last_stage = stage
        self.last_write = now
        done = self.stage_offsets.get(stage, 0.0) + self.weights.get(stage, 0.0) * min(
            max(fraction, 0.0), 1.0
        )
        percent = int(99 * done / self.total)
        updates = {"stage": stage, "heartbeat_at": timezone.now()}
        if hasattr(self.model, "eta_seconds"):
            elapsed = now - self.started
            share = done / self.total
            updates["eta_seconds"] = int(elapsed * (1 - share) / share) if share > 0.02 else None
        # One guarded UPDATE per tick: progress only moves forward (a retried stage may report
        # from zero again), and zero rows updated means the job was cancelled or swept.
        self.still_running = bool(
            self.model.objects.filter(pk=self.pk, status=self.running_status).update(
                progress=Greatest("progress", Value(percent)), **updates
            )
        )

    def should_cancel(self) -> bool:
        if time.monotonic() - self.last_write >= PROGRESS_EVERY:
            self.still_running = self.model.objects.filter(
                pk=self.pk, status=self.running_status
            ).exists()
            self.last_write = time.monotonic()
        return not self.still_running


def stale_rows(model, *, running_statuses: list[str]):
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    return model.objects.filter(status__in=running_statuses).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
