"""Handing our files to a provider by URL.

In S3 mode a presigned GET URL. In local mode a signed, expiring, unauthenticated URL on
``PUBLIC_BASE_URL``: ``/provider-media/<expires>/<signature>/<key>``, where the signature is an
HMAC of the key and the expiry time under a key derived from SECRET_KEY. The key keeps its file
name, so the URL ends in ``.mp4``/``.wav``/``.png`` (providers that read the suffix see it), and
the canonical keys contain no spaces. The view answers 200 (or 206 for a range) with the file's
type from its extension, never redirects, and refuses an expired or altered URL with 403.
"""

import hashlib
import hmac
import os
import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_safe

from studio.media import CANONICAL_KEY, _ranged_file_response


def _signature(key: str, expires: int) -> str:
    return salted_hmac("providers.media", f"{key}\n{expires}", algorithm="sha256").hexdigest()[:40]


def media_url(key: str, *, seconds: int | None = None) -> str:
    """A URL a provider can fetch `key` from, without signing in, for `seconds`."""
    seconds = seconds or settings.PROVIDER_MEDIA_URL_SECONDS
    if settings.AWS_STORAGE_BUCKET_NAME:
        return default_storage.url(key, expire=seconds)
    expires = int(time.time()) + seconds
    path = reverse("provider_media", kwargs={"expires": expires, "signature": _signature(key, expires), "key": key})
    return settings.PUBLIC_BASE_URL + path


@require_safe
def provider_media(request: HttpRequest, expires: int, signature: str, key: str) -> HttpResponse:
    if expires < time.time() or not hmac.compare_digest(signature, _signature(key, expires)):
        return HttpResponseForbidden("This media link has expired or was altered.", content_type="text/plain")
    if not CANONICAL_KEY.match(key):
        raise Http404()
    full = os.path.join(os.path.realpath(settings.MEDIA_ROOT), key)
    if not os.path.isfile(full):
        raise Http404()
    return _ranged_file_response(request, full)


def callback_secret() -> str:
    """The secret Tencent-style callback URLs are signed with (they carry our own HMAC)."""
    return hashlib.sha256(salted_hmac("providers.callback", "callback").digest()).hexdigest()
