"""Signed callbacks when a render finishes (the Standard Webhooks scheme).

A render created with a callback URL gets one `WebhookDelivery` per terminal state it
reaches; each delivery is retried until it is delivered, refused for good, or out of time.
"""

import base64
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from renders.models import Render
from studio.models import Team

SECRET_PREFIX = "whsec_"


def new_signing_secret() -> str:
    """A Standard Webhooks symmetric secret: 32 random bytes, base64, with its prefix."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class WebhookSecret(models.Model):
    """A team's signing secret. After a rotation the previous one signs too, for a while, so
    receivers can switch without dropping a delivery."""

    team = models.OneToOneField(Team, models.CASCADE, primary_key=True, related_name="webhook_secret")
    secret = models.CharField(max_length=100, default=new_signing_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"signing secret of {self.team}"

    def signing_secrets(self) -> list[str]:
        """The secrets every delivery is signed with now: the current one first."""
        keys = [self.secret]
        if self.previous_secret and self.previous_valid_until and self.previous_valid_until > timezone.now():
            keys.append(self.previous_secret)
        return keys

    @staticmethod
    def previous_lifetime() -> timedelta:
        return timedelta(hours=settings.WEBHOOK_PREVIOUS_SECRET_HOURS)


class RenderCallback(models.Model):
    """Where a render's outcome is posted (the API's `callback_url`)."""

    render = models.OneToOneField(Render, models.CASCADE, primary_key=True, related_name="callback")
    url = models.URLField(max_length=2000)
    # The receiver answered 410 Gone: it wants nothing more about this render.
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        DISABLED = "disabled", "Disabled (410 Gone)"

    class Event(models.TextChoices):
        SUCCEEDED = "render.succeeded", "Render succeeded"
        FAILED = "render.failed", "Render failed"
        CANCELLED = "render.cancelled", "Render cancelled"

    team = models.ForeignKey(Team, models.CASCADE, related_name="webhook_deliveries")
    render = models.ForeignKey(Render, models.CASCADE, related_name="webhook_deliveries")
    # The render's finished_at: which terminal state this is, so a hook that runs twice (the
    # worker and the safety sweep) still makes one delivery, and a retried render a new one.
    event_at = models.DateTimeField()
    url = models.URLField(max_length=2000)
    event_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=30, choices=Event.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["render", "event_at"], name="one_delivery_per_render_outcome"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.url}"
