"""Callbacks, signing secrets and the events of finished renders.

The API saves a render's callback with `webhook_callback_set`; the render's worker calls
`webhook_render_finished` when the render stops, and so does the safety sweep in
`webhooks.tasks`, so a delivery is made even when that call was lost.
"""

import base64
import hashlib
import hmac
import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from renders.models import Render
from studio import netguard
from studio.models import Team
from webhooks.models import SECRET_PREFIX, RenderCallback, WebhookDelivery, WebhookSecret, new_signing_secret

log = logging.getLogger(__name__)

EVENT_FOR_STATUS = {
    Render.Status.SUCCEEDED: WebhookDelivery.Event.SUCCEEDED,
    Render.Status.FAILED: WebhookDelivery.Event.FAILED,
    Render.Status.CANCELLED: WebhookDelivery.Event.CANCELLED,
}


def webhook_callback_check(*, url: str, field: str = "callback_url") -> str:
    """The callback URL as it will be stored, or `netguard.UrlRefused` with a sentence.

    Call it before creating the render so a refused URL leaves nothing behind.
    """
    if len(url) > RenderCallback._meta.get_field("url").max_length:
        raise netguard.UrlRefused("That callback URL is too long; use one under 2000 characters.",
                                  field=field, code="url_invalid")
    return str(netguard.check_url(url, field=field).url)


def webhook_callback_set(*, render: Render, url: str, field: str = "callback_url") -> RenderCallback:
    """Post this render's outcome to `url` (checked by the address guard now, and again at
    every send)."""
    checked = webhook_callback_check(url=url, field=field)
    callback, _ = RenderCallback.objects.update_or_create(render=render, defaults={"url": checked, "disabled_at": None})
    if render.is_terminal:  # set after the render already finished: tell the receiver now
        transaction.on_commit(lambda: webhook_render_finished(render_id=render.pk))
    return callback


def webhook_render_finished(*, render_id) -> WebhookDelivery | None:
    """Queue the event of a render that reached a terminal state, once per such state.

    Safe to call at any time and more than once: a render that is not terminal, has no
    callback, or already has this event queued is left alone. Never raises: a webhook must not
    fail the render it reports on (the sweep in `webhooks.tasks` tries again).
    """
    try:
        return _queue_event(render_id)
    except Exception:
        log.exception("could not queue the webhook of render %s", render_id)
        return None


def _queue_event(render_id) -> WebhookDelivery | None:
    render = Render.objects.select_related("callback").filter(pk=render_id).first()
    if render is None or not render.is_terminal or render.finished_at is None:
        return None
    callback = getattr(render, "callback", None)
    if callback is None or callback.disabled_at is not None:
        return None
    if WebhookDelivery.objects.filter(render=render, event_at=render.finished_at).exists():
        return None
    event_type = EVENT_FOR_STATUS[render.status]
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                team_id=render.team_id,
                render=render,
                event_at=render.finished_at,
                url=callback.url,
                event_id=f"msg_{uuid.uuid4().hex}",
                event_type=event_type,
                payload=event_payload(render, event_type),
                next_attempt_at=timezone.now(),
            )
            transaction.on_commit(lambda: webhook_send_enqueue(delivery.pk))
    except IntegrityError:  # the sweep and the worker raced; the other one queued it
        return None
    return delivery


def webhook_send_enqueue(delivery_id: int) -> None:
    from webhooks.tasks import webhook_send

    webhook_send.delay(delivery_id)


def event_payload(render: Render, event_type: str) -> dict:
    """The event body: Standard Webhooks' type/timestamp/data, data being the render's outcome."""
    base = settings.STUDIO_PUBLIC_URL

    def link(field, url_of) -> str | None:
        if not field:
            return None
        url = url_of()
        return url if url.startswith(("http://", "https://")) else f"{base}{url}"

    return {
        "type": event_type,
        "timestamp": _iso(render.finished_at),
        "data": {
            "id": str(render.pk),
            "object": "render",
            "title": render.title,
            "status": render.status,
            "error": render.error or None,
            "duration": render.duration,
            "created_at": _iso(render.created_at),
            "finished_at": _iso(render.finished_at),
            "api_url": f"{base}/api/v1/renders/{render.pk}",
            "video_url": link(render.video, lambda: render.download_url),
            "poster_url": link(render.poster, lambda: render.poster.url),
            "captions_srt_url": link(render.captions_srt, lambda: render.srt_download_url),
            "captions_vtt_url": link(render.captions_vtt, lambda: render.vtt_download_url),
        },
    }


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def webhook_deliveries(*, render: Render) -> QuerySet[WebhookDelivery]:
    """A render's deliveries, newest first: what its page shows."""
    return WebhookDelivery.objects.filter(render=render).order_by("-created_at", "-id")


# ---------------------------------------------------------------------------------------------
# Signing

def webhook_secret(*, team: Team) -> WebhookSecret:
    """The team's signing secret, made on first use."""
    secret, _ = WebhookSecret.objects.get_or_create(team=team)
    return secret


@transaction.atomic
def webhook_secret_rotate(*, team: Team) -> WebhookSecret:
    """A new signing secret; the one it replaces keeps signing too for
    WEBHOOK_PREVIOUS_SECRET_HOURS, so receivers can switch over without losing deliveries."""
    secret = WebhookSecret.objects.select_for_update().filter(team=team).first()
    if secret is None:
        return WebhookSecret.objects.create(team=team)
    now = timezone.now()
    secret.previous_secret = secret.secret
    secret.previous_valid_until = now + WebhookSecret.previous_lifetime()
    secret.secret = new_signing_secret()
    secret.rotated_at = now
    secret.save()
    return secret


def sign(*, secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, "id.timestamp.body")),
    the key being the secret's base64 part, decoded."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def signature_header(*, secrets: list[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one signature per secret, space-separated."""
    return " ".join(sign(secret=s, event_id=event_id, timestamp=timestamp, body=body) for s in secrets)
