from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from avatars.models import Avatar
from renders.models import Render, RenderEvent

STOPPED_RESPONDING = "The worker stopped responding {n} times; retry, or contact your admin if it keeps happening."


@shared_task
def sweep_stale_jobs() -> dict:
    """Re-queue jobs whose worker died (stale heartbeat); fail those out of attempts."""
    from avatars.services import _enqueue_prepare
    from renders.services import _enqueue_render
    from studio.jobs import stale_rows

    counts = {"requeued": 0, "failed": 0}
    for model, running, entry, enqueue in (
        (Avatar, Avatar.RUNNING, Avatar.Status.UPLOADED, _enqueue_prepare),
        (Render, [Render.Status.RUNNING], Render.Status.QUEUED, _enqueue_render),
    ):
        for row in stale_rows(model, running_statuses=running):
            with transaction.atomic():
                if row.attempts >= settings.JOB_MAX_ATTEMPTS:
                    moved = model.objects.filter(pk=row.pk, status=row.status).update(
                        status="failed",
                        error=STOPPED_RESPONDING.format(n=row.attempts),
                        finished_at=timezone.now(),
                    )
                    counts["failed"] += moved
                else:
                    moved = model.objects.filter(pk=row.pk, status=row.status).update(status=entry)
                    if moved:
                        transaction.on_commit(lambda pk=row.pk, enqueue=enqueue: enqueue(pk))
                    counts["requeued"] += moved
                if moved and model is Render:
                    RenderEvent.objects.create(render=row, kind="swept", message=f"attempt {row.attempts}")
        counts["requeued"] += _requeue_forgotten(model, entry, enqueue)
    return counts


def _requeue_forgotten(model, entry: str, enqueue) -> int:
    """Send again the jobs that have waited suspiciously long in their entry status.

    A broker that lost its messages (say, a restarted embedded Redis) must not leave rows
    queued forever. A duplicate message is harmless: the task's claim lets only one run.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_REQUEUE_WAITING_AFTER_SECONDS)
    waiting = list(model.objects.filter(status=entry, updated_at__lt=cutoff).values_list("pk", flat=True)[:500])
    if waiting:
        model.objects.filter(pk__in=waiting, status=entry).update(updated_at=timezone.now())
        for pk in waiting:
            enqueue(pk)
    return len(waiting)
