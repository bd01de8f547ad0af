from celery import shared_task

from renders import rendering
from renders.models import Render, RenderEvent
from renders.services import render_run_enqueue
from studio.jobs import TRANSIENT_RETRY, job_sweep


@shared_task(bind=True, acks_late=True, **TRANSIENT_RETRY)
def render_run(self, render_id: str) -> None:
    rendering.render_run(render_id, last_try=self.request.retries >= self.max_retries)


@shared_task
def render_sweep() -> dict[str, int]:
    """Re-queue renders whose worker died; fail those out of attempts."""
    return job_sweep(
        Render,
        running_statuses=[Render.Status.RUNNING],
        entry_status=Render.Status.QUEUED,
        enqueue=render_run_enqueue,
        on_swept=lambda pk, message: RenderEvent.objects.create(render_id=pk, kind="swept", message=message),
    )
