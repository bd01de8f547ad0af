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
    return counts
