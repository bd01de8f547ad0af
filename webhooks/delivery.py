"""Sending one delivery: claim it, sign it, POST it through the address guard, record what
happened, and schedule the next try.

The task in `webhooks.tasks` is a thin wrapper around `deliver`; it works from the delivery's
id and re-reads the row, so a duplicate or late message is harmless: only the worker whose
conditional UPDATE claimed the attempt sends it.
"""

import json
import logging
import random
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from studio import netguard
from webhooks.models import RenderCallback, WebhookDelivery
from webhooks.services import signature_header, webhook_secret

log = logging.getLogger(__name__)

# Seconds to wait after each failed attempt: 9 attempts over about a day (at 0, 5 s, 1 min 5 s,
# 6 min, 36 min, 2 h 36 min, 6 h 36 min, 13 h 36 min and 24 h 36 min, give or take the jitter).
RETRY_DELAYS = [5, 60, 5 * 60, 30 * 60, 2 * 3600, 4 * 3600, 7 * 3600, 11 * 3600]
# Each delay is stretched or shrunk by up to this share, so the retries of many deliveries that
# failed together (a receiver's outage) do not arrive together; each delay still exceeds the last.
JITTER = 0.15
RETRY_AFTER_MAX = 8 * 3600  # a receiver's Retry-After is honoured up to this long
USER_AGENT = "AvatarStudio-Webhooks/1"
Status = WebhookDelivery.Status


def deliver(delivery_id: int) -> None:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    # The claim: one attempt, one sender. Until the lease runs out no other worker (nor the
    # due sweep) picks this delivery up; a sender that dies mid-attempt leaves it due again.
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at=None), pk=delivery_id, status=Status.PENDING
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=lease)
    if not claimed:
        return  # gone, delivered, not due yet, or another worker has it
    delivery = WebhookDelivery.objects.select_related("team").filter(pk=delivery_id).first()
    if delivery is None:
        return
    attempt = Q(pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts)

    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets=webhook_secret(team=delivery.team).signing_secrets(),
            event_id=delivery.event_id, timestamp=timestamp, body=body,
        ),
    }
    try:
        answer = netguard.post(delivery.url, content=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except netguard.UrlRefused as refusal:
        if refusal.transient:  # unreachable, slow, or a name that does not resolve right now
            _retry(delivery, attempt, status_code=None, error=str(refusal))
        else:  # the address itself is refused (say, it now resolves to a private one): for good
            _finish(attempt, Status.FAILED, status_code=None, error=str(refusal))
        return

    code = answer.status
    if 200 <= code < 300:
        _finish(attempt, Status.DELIVERED, status_code=code, error="", delivered_at=timezone.now())
    elif code == 410:
        gone = "The receiver answered 410 Gone: no more deliveries for this render."
        if _finish(attempt, Status.DISABLED, status_code=code, error=gone):
            RenderCallback.objects.filter(render_id=delivery.render_id).update(disabled_at=timezone.now())
            WebhookDelivery.objects.filter(render_id=delivery.render_id, status=Status.PENDING).update(
                status=Status.DISABLED, next_attempt_at=None,
            )
    else:
        if 300 <= code < 400:
            error = (
                f"The receiver answered {code} (a redirect); webhooks do not follow redirects: "
                "update the callback URL."
            )
        else:
            error = f"The receiver answered {code}."
        wait = _retry_after(answer.retry_after) if code in (429, 503) else None
        _retry(delivery, attempt, status_code=code, error=error, at_least=wait)


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed ones, with jitter; None when out of tries."""
    if attempts > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)


def _retry(delivery: WebhookDelivery, attempt: Q, *, status_code: int | None, error: str,
           at_least: float | None = None) -> None:
    delay = retry_delay(delivery.attempts)
    if delay is None:
        _finish(attempt, Status.FAILED, status_code=status_code, error=error)
        return
    if at_least is not None:
        delay = max(delay, at_least)
    WebhookDelivery.objects.filter(attempt).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay), last_status_code=status_code, last_error=error,
    )


def _finish(attempt: Q, status: str, *, status_code: int | None, error: str, **fields) -> bool:
    return bool(
        WebhookDelivery.objects.filter(attempt).update(
            status=status, next_attempt_at=None, last_status_code=status_code, last_error=error, **fields,
        )
    )


def _retry_after(value: str) -> float | None:
    """Retry-After as seconds (it may be a number of seconds or an HTTP date), capped."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def send_due(limit: int = 200) -> int:
    """Queue the deliveries whose next try is due; the count queued."""
    from webhooks.services import webhook_send_enqueue

    due = list(
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        webhook_send_enqueue(pk)
    return len(due)
