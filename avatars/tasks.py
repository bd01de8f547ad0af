from celery import shared_task

from avatars import preparation
from avatars.models import Avatar
from avatars.services import avatar_prepare_enqueue
from studio.jobs import TRANSIENT_RETRY, job_sweep


@shared_task(bind=True, acks_late=True, **TRANSIENT_RETRY)
def avatar_prepare(self, avatar_id: str) -> None:
    preparation.avatar_prepare(avatar_id, last_try=self.request.retries >= self.max_retries)


@shared_task
def avatar_sweep() -> dict[str, int]:
    """Re-queue preparations whose worker died; fail those out of attempts."""
    return job_sweep(
        Avatar,
        running_statuses=Avatar.RUNNING,
        entry_status=Avatar.Status.UPLOADED,
        enqueue=avatar_prepare_enqueue,
    )
