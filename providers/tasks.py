from celery import shared_task

from providers import services
from studio.jobs import TRANSIENT_RETRY


@shared_task(bind=True, acks_late=True, **TRANSIENT_RETRY)
def provider_poll(self, job_id: str, token: str | None = None) -> None:
    """One step of a render on a provider (routed to the ``remote`` queue); it schedules the next."""
    services.provider_poll(job_id=job_id, token=token)


@shared_task(bind=True, acks_late=True, **TRANSIENT_RETRY)
def provider_avatar_check(self, provider_avatar_id: int) -> None:
    """A customisation at a provider, checked now and again until it ends (on the ``remote`` queue)."""
    services.provider_avatar_check(provider_avatar_id=provider_avatar_id, scheduled=True)
