"""Provider credentials at rest: Fernet tokens under keys from the settings, rotatable.

``PROVIDER_CREDENTIALS_KEYS`` lists Fernet keys, newest first: the first encrypts, every one
decrypts, so a new key is put in front, ``manage.py provider_credentials_rotate`` re-encrypts
every account under it, and the old key is dropped afterwards. Without the setting a key is
derived from ``SECRET_KEY`` (fine for a developer's machine; a deployment sets its own, so
that changing SECRET_KEY does not make the stored credentials unreadable).
"""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialsUnreadable(Exception):
    """No configured key opens the stored credentials (a key was dropped too early)."""


def _derived_key() -> bytes:
    digest = hashlib.sha256(f"providers.credentials:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet() -> MultiFernet:
    keys = list(settings.PROVIDER_CREDENTIALS_KEYS) or [_derived_key()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "PROVIDER_CREDENTIALS_KEYS must be Fernet keys separated by commas, newest first; make one with: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None


def encrypt(values: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, str]:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable(
            "The provider account's credentials cannot be read with the configured keys; the team owner should "
            "add the account again, or the admin should restore the previous PROVIDER_CREDENTIALS_KEYS entry."
        ) from None


def rotate(token: str) -> str:
    """The same credentials under the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable("No configured key opens these credentials.") from None
