"""Team API keys, direct uploads and idempotent requests: the rows behind the public API."""

import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.models import Team

KEY_PREFIX_LENGTH = 8


def key_digest(secret: str) -> str:
    """SHA-256 of the whole key: keys are long random strings, so a slow hash would add nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A team's key. Only its prefix and digest are kept: the secret is shown once, at creation."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80, help_text="What the key is for, e.g. “CMS publishing”.")
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.displayed_prefix}…)"

    @property
    def displayed_prefix(self) -> str:
        return f"{ApiKey.SCHEME}{self.prefix}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # Keys read "avs_<prefix>_<secret>": the scheme makes a leaked key recognisable to secret
    # scanners, the prefix finds the row without comparing digests of every key.
    SCHEME = "avs_"

    @classmethod
    def generate(cls) -> tuple[str, str]:
        """A new (prefix, whole key)."""
        alphabet = "abcdefghijkmnopqrstuvwxyz23456789"
        prefix = "".join(secrets.choice(alphabet) for _ in range(KEY_PREFIX_LENGTH))
        return prefix, f"{cls.SCHEME}{prefix}_{secrets.token_urlsafe(32)}"


class Upload(models.Model):
    """A file a client uploads straight to storage before naming it in a request, by its id.

    Issued with a credential for one kind of file and a size limit; received once (checked by
    size, type and bytes); used once. Until used it belongs to nothing but its team.
    """

    class Kind(models.TextChoices):
        VIDEO = "video", "Video"
        PHOTO = "photo", "Photo"
        AUDIO = "audio", "Audio"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the file"
        RECEIVED = "received", "Received"
        USED = "used", "Used"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, models.CASCADE, related_name="uploads")
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="uploads")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=60, help_text="As declared when the credential was issued.")
    filename = models.CharField(max_length=255, blank=True, help_text="As the client named it.")
    max_bytes = models.BigIntegerField()
    key = models.CharField(max_length=300, unique=True, help_text="Where the file lands in storage.")
    size = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} upload {self.pk}"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at


class IdempotentRequest(models.Model):
    """The first successful answer to a POST carrying an Idempotency-Key, replayed on repeats."""

    api_key = models.ForeignKey(ApiKey, models.CASCADE, related_name="idempotent_requests")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while in progress.")
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="one_request_per_idempotency_key")
        ]

    def __str__(self) -> str:
        return self.key
