"""What can go wrong when a provider renders for us, each as a sentence a creator can act on.

The studio's poller needs to tell three things apart: retry later (``TransientProviderError``,
with the provider's ``Retry-After`` when it sent one), stop and ask the owner to fix the account
(``ProviderAuthError``, ``ProviderQuotaError``), and stop and ask the creator to change the input
(``ProviderInputRejected``, an ``InputRejected`` so forms and the API show it like a local
refusal). Messages never carry credentials: the HTTP layer scrubs every secret out of provider
text before it reaches an exception.
"""

from __future__ import annotations

from ..errors import EngineError, InputRejected


class ProviderError(EngineError):
    """A provider answered with an error, or could not be reached.

    ``provider`` is the display name (``"A2E"``), ``code`` the provider's own error code or the
    HTTP status when it gave none, ``reason`` the provider's message (already scrubbed).
    """

    def __init__(self, message: str, *, provider: str, code: str | int | None = None, reason: str = ""):
        super().__init__(message)
        self.provider = provider
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, provider={self.provider!r}, code={self.code!r})"


class ProviderAuthError(ProviderError):
    """The account's key was refused; only the team owner can fix this."""


class ProviderQuotaError(ProviderError):
    """The account is out of credits, concurrency or plan; only the team owner can fix this."""


class TransientProviderError(ProviderError):
    """Worth retrying later: a timeout, a connection failure, a 5xx, or a 429.

    ``retry_after`` is the provider's ``Retry-After`` in seconds when it sent one, so the poller
    waits at least that long instead of its own backoff.
    """

    def __init__(self, message: str, *, provider: str, code=None, reason: str = "", retry_after: float | None = None):
        super().__init__(message, provider=provider, code=code, reason=reason)
        self.retry_after = retry_after


class ProviderInputRejected(InputRejected):
    """The provider refused the input itself (its reason is in the sentence).

    A subclass of ``InputRejected`` so the studio treats it like any refusal of the creator's
    input; ``provider`` and ``reason`` keep the provider's own words for the admin.
    """

    def __init__(self, message: str, *, provider: str, field: str = "", code: str = "", reason: str = ""):
        super().__init__(message, field=field, code=code)
        self.provider = provider
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, provider={self.provider!r}, field={self.field!r})"


class CallbackRejected(EngineError):
    """A callback request did not prove it came from the provider for this task."""
