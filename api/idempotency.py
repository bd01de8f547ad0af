"""`Idempotency-Key`: a POST repeated with the same key (per API key) gets the first answer back.

Only successes are kept: a request that failed created nothing, so running it again is safe
and lets a caller fix a transient problem without inventing a new key.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja.responses import Status

from api.errors import ApiError
from api.models import IdempotentRequest

HEADER = "Idempotency-Key"
# A request still marked in progress after this long died with its process; let a retry take over.
ABANDONED_AFTER = timedelta(minutes=10)
KEPT_FOR = timedelta(hours=24)


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def _claim(request: HttpRequest, key: str, fingerprint: str) -> IdempotentRequest | tuple[int, Any]:
    """A fresh in-progress record for this request, or the stored (status, body) to replay."""
    try:
        with transaction.atomic():
            return IdempotentRequest.objects.create(api_key=request.auth, key=key, fingerprint=fingerprint)
    except IntegrityError:
        pass
    record = IdempotentRequest.objects.get(api_key=request.auth, key=key)
    if record.fingerprint != fingerprint:
        raise ApiError(
            422, "idempotency_key_reused",
            f"This {HEADER} was already used for a different request; use a new key for a new request.",
            field=HEADER,
        )
    if record.status_code is not None:
        return record.status_code, record.response
    if timezone.now() - record.created_at < ABANDONED_AFTER:
        raise ApiError(
            409, "idempotency_in_progress",
            f"A request with this {HEADER} is still being processed; retry in a few seconds.",
            field=HEADER,
        )
    record.created_at = timezone.now()
    record.save(update_fields=["created_at"])
    return record


def idempotent(request: HttpRequest, response: HttpResponse, create: Callable[[], tuple[int, Any]]) -> Status:
    """Run `create` once per Idempotency-Key; repeats get its (status, body) again."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return Status(*create())
    if len(key) > 255:
        raise ApiError(422, "invalid_request", f"{HEADER} must be at most 255 characters.", field=HEADER)
    claimed = _claim(request, key, _fingerprint(request))
    if not isinstance(claimed, IdempotentRequest):
        response["Idempotent-Replayed"] = "true"
        return Status(*claimed)
    try:
        status, body = create()
    except BaseException:
        claimed.delete()
        raise
    # Stored as the JSON it is sent as, so a replay is byte-for-byte the same answer.
    body = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    IdempotentRequest.objects.filter(pk=claimed.pk).update(status_code=status, response=body)
    return Status(status, body)


def idempotency_sweep() -> int:
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - KEPT_FOR).delete()
    return deleted
