"""The HTTP layer every provider engine goes through: timeouts, transient errors, no secrets out.

Every request has a timeout. Timeouts, connection failures, 5xx and 429 become
``TransientProviderError`` (with ``Retry-After`` in seconds when the provider sent one) so the
studio's poller backs off; 401/403 become ``ProviderAuthError``; 402 ``ProviderQuotaError``.
Other answers are returned for the engine to read its provider's own error codes.

Provider text that reaches an exception is scrubbed of every credential value first, httpx's
own exceptions are not chained (their messages carry URLs, and Tencent's carry a signature),
and the log shows the method, host and path only.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from .errors import (
    ProviderAuthError,
    ProviderError,
    ProviderInputRejected,
    ProviderQuotaError,
    TransientProviderError,
)

log = logging.getLogger("engine.remote")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# An upload sends the whole file, so writing may take minutes on a slow uplink.
UPLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0, write=600.0)
REDACTED = "[redacted]"


class ProviderHttp:
    def __init__(self, label: str, secrets: Iterable[str], *, timeout: httpx.Timeout | float | None = None,
                 client: httpx.Client | None = None):
        self.label = label
        self._secrets = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=timeout or DEFAULT_TIMEOUT, follow_redirects=False,
                                             verify=_ssl_context())

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def request(self, method: str, url: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None, content: Any = None,
                timeout: httpx.Timeout | None = None) -> httpx.Response:
        parts = urlsplit(url)
        where = f"{method} {parts.netloc}{parts.path}"
        started = time.monotonic()
        kwargs: dict[str, Any] = {"json": json, "params": params, "headers": headers, "content": content}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            log.warning("%s timed out", where)
            raise TransientProviderError(
                f"{self.label} did not answer in time; the studio will try again.", provider=self.label,
                code="timeout") from None
        except httpx.TransportError as exc:
            log.warning("%s failed: %s", where, type(exc).__name__)
            raise TransientProviderError(
                f"Could not reach {self.label}; the studio will try again.", provider=self.label,
                code="unreachable") from None
        log.info("%s → %s in %.2f s", where, response.status_code, time.monotonic() - started)
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            busy = "is rate-limiting requests" if status == 429 else "is having trouble"
            raise TransientProviderError(
                f"{self.label} {busy} (HTTP {status}); the studio will try again.", provider=self.label,
                code=status, reason=self.reason(response), retry_after=retry_after)
        if status in (401, 403):
            raise self.auth_error(self.reason(response), code=status)
        if status == 402:
            raise self.quota_error(self.reason(response), code=status)
        return response

    def auth_error(self, reason: str = "", *, code=None) -> ProviderAuthError:
        return ProviderAuthError(
            f"The {self.label} key was refused; the team owner should check the {self.label} account in the "
            "team settings." + self.said(reason), provider=self.label, code=code, reason=reason)

    def quota_error(self, reason: str = "", *, code=None) -> ProviderQuotaError:
        return ProviderQuotaError(
            f"The {self.label} account is out of credits or its plan does not cover this; the team owner "
            f"should top it up at {self.label}." + self.said(reason), provider=self.label, code=code, reason=reason)

    def failure(self, reason: str, *, code=None) -> ProviderError:
        return ProviderError(f"{self.label} refused the request." + self.said(reason), provider=self.label,
                             code=code, reason=reason)

    def input_rejected(self, reason: str, *, code=None, field: str = "") -> ProviderInputRejected:
        return ProviderInputRejected(
            f"{self.label} refused the input." + self.said(reason) + " Change it and render again.",
            provider=self.label, field=field, code=str(code or ""), reason=reason)

    def classify(self, code, reason: str) -> Exception:
        """For providers whose documents list no error codes: the message says which kind it is."""
        lowered = reason.lower()
        if any(word in lowered for word in _AUTH_WORDS):
            return self.auth_error(reason, code=code)
        if any(word in lowered for word in _QUOTA_WORDS):
            return self.quota_error(reason, code=code)
        if any(word in lowered for word in _INPUT_WORDS):
            return self.input_rejected(reason, code=code)
        return self.failure(reason, code=code)

    def said(self, reason: str) -> str:
        reason = reason.strip()
        return f' {self.label} said: "{reason}".' if reason else ""

    def reason(self, response: httpx.Response) -> str:
        """The provider's own words for an error, short and without secrets."""
        try:
            body = response.json()
        except ValueError:
            return self.scrub(response.text.strip()[:300])
        return self.scrub(_find_message(body)[:300])

    def json(self, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise TransientProviderError(
                f"{self.label} answered with something that is not JSON (HTTP {response.status_code}); "
                "the studio will try again.", provider=self.label, code=response.status_code) from None
        if not isinstance(body, dict):
            raise self.failure("an unexpected answer", code=response.status_code)
        return body

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


_AUTH_WORDS = ("api key", "apikey", "token", "unauthor", "authenticat", "signature", "permission denied",
               "forbidden", "appkey", "authorization invalid", "invalid authorization", "authorization failed")
_QUOTA_WORDS = ("credit", "balance", "insufficient", "quota", "diamond", "coin", "not purchased", "package",
                "concurrency")
_INPUT_WORDS = ("url", "video", "audio", "image", "format", "invalid", "param", "duration", "resolution",
                "face", "size", "text", "ssml")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes a few hundred milliseconds; the poller builds an engine per poll.
    return ssl.create_default_context(cafile=certifi.where())


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _find_message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "Message", "msg", "errorMsg", "error", "FailMessage", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        for key in ("Header", "data", "result"):
            if isinstance(body.get(key), dict):
                found = _find_message(body[key])
                if found:
                    return found
    return ""


