"""`Authorization: Bearer <key>`: which team a request acts for, and how often it may."""

import hmac
import math
import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyQuery, HttpBearer

from api.errors import ApiError
from api.models import ApiKey, key_digest

# last_used_at is for owners deciding which keys to revoke; minute precision is plenty, and
# it spares a write on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def key_from_secret(secret: str) -> ApiKey | None:
    """The active key this secret belongs to, or None; compared in constant time.

    A revoked key is refused with its own sentence: only its holder can know its digest.
    """
    if not secret.startswith(ApiKey.SCHEME):
        return None
    prefix = secret[len(ApiKey.SCHEME):].split("_", 1)[0]
    key = ApiKey.objects.select_related("team", "created_by").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.digest, key_digest(secret)):
        return None
    if not key.is_active:
        raise ApiError(
            401, "key_revoked", "This API key was revoked by a team owner; ask one for a new key.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


def check_rate(key: ApiKey) -> None:
    """A fixed window per key and minute, counted in the cache shared by the web processes."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    window = 60
    now = time.time()
    bucket = f"api-rate:{key.pk}:{int(now // window)}"
    cache.add(bucket, 0, timeout=window + 5)
    try:
        count = cache.incr(bucket)
    except ValueError:  # expired between add and incr: this request opens the next window
        cache.add(bucket, 1, timeout=window + 5)
        count = 1
    if count > limit:
        retry_after = max(1, math.ceil(window - now % window))
        raise ApiError(
            429, "rate_limited",
            f"This key made more than {limit} requests this minute; wait {retry_after} s and try again.",
            headers={"Retry-After": str(retry_after)},
        )


class BearerKey(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = key_from_secret(token.strip())
        if key is None:
            return None
        check_rate(key)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request.team = key.team
        return key


# Result links in local mode work like S3's presigned URLs: anyone holding one may fetch that
# one file until it expires, with no key, so the same client code downloads in both modes.
FILE_LINK_SALT = "api.file"


def signed_file_path(path: str) -> str:
    return f"{path}?token={signing.dumps(path, salt=FILE_LINK_SALT)}"


class SignedLink:
    """What a request authenticated by a signed file link may do: fetch that path, nothing else."""


class SignedFileLink(APIKeyQuery):
    param_name = "token"

    def authenticate(self, request: HttpRequest, key: str | None) -> SignedLink | None:
        if not key:
            return None
        try:
            path = signing.loads(key, salt=FILE_LINK_SALT, max_age=settings.AWS_QUERYSTRING_EXPIRE)
        except signing.BadSignature:
            return None
        return SignedLink() if path == request.path else None
