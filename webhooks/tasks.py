from datetime import timedelta

from celery import shared_task
from django.db.models import Exists, OuterRef
from django.utils import timezone

from renders.models import Render
from studio.jobs import TRANSIENT_RETRY
from webhooks import delivery
from webhooks.models import RenderCallback, WebhookDelivery
from webhooks.services import webhook_render_finished

# How far back the sweep looks for finished renders whose event was never queued (a worker
# that died between the render's last write and its hook, a cancel from elsewhere).
MISSED_EVENTS_WINDOW = timedelta(hours=1)


@shared_task(**TRANSIENT_RETRY)
def webhook_send(delivery_id: int) -> None:
    delivery.deliver(delivery_id)


@shared_task
def webhook_send_due() -> dict[str, int]:
    """Every few seconds (beat): queue the events that were missed, then the due deliveries."""
    queued_events = 0
    missed = (
        RenderCallback.objects.filter(
            disabled_at=None,
            render__status__in=Render.TERMINAL,
            render__finished_at__gte=timezone.now() - MISSED_EVENTS_WINDOW,
        )
        .exclude(
            Exists(WebhookDelivery.objects.filter(render=OuterRef("render"), event_at=OuterRef("render__finished_at")))
        )
        .values_list("render_id", flat=True)[:200]
    )
    for render_id in list(missed):
        queued_events += webhook_render_finished(render_id=render_id) is not None
    return {"events_queued": queued_events, "deliveries_queued": delivery.send_due()}
