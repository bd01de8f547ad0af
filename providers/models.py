"""Provider accounts, avatars trained at a provider, and the provider side of a render.

A render uses a provider exactly when it has a ``RemoteJob`` (``render.remote_job``); the
render row keeps its status, progress, files and events as for a local render, so the status
page, API, admin and webhooks need nothing new. The job row holds what must survive a worker
restart: the provider's task id (saved before polling starts) and when to poll next.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from avatars.models import Avatar
from engine.remote import PROVIDERS
from providers import crypto
from renders.models import Render
from studio.models import Team

PROVIDER_CHOICES = [(name, engine.label) for name, engine in PROVIDERS.items()]


class ProviderAccount(models.Model):
    """A team's account at a provider. The credentials are encrypted and never shown again."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="provider_accounts")
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    label = models.CharField(max_length=60, help_text="How the team tells its accounts apart.")
    credentials_encrypted = models.TextField(editable=False)
    hint = models.CharField(max_length=8, blank=True, editable=False, help_text="The key's last characters.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider", "label"]
        constraints = [models.UniqueConstraint(fields=["team", "label"], name="provider_account_label_unique")]

    def __str__(self) -> str:
        return f"{self.provider_label}: {self.label}"

    def __repr__(self) -> str:  # no credentials, even encrypted, in a traceback
        return f"<ProviderAccount {self.pk} {self.provider} team={self.team_id}>"

    @property
    def provider_label(self) -> str:
        return PROVIDERS[self.provider].label

    @property
    def choice_label(self) -> str:
        return f"{self.provider_label} — {self.label} (…{self.hint})"

    def set_credentials(self, values: dict[str, str]) -> None:
        fields = PROVIDERS[self.provider].credential_fields
        kept = {name: str(values[name]).strip() for name in fields}
        self.credentials_encrypted = crypto.encrypt(kept)
        self.hint = kept[fields[0]][-4:]

    def credentials(self) -> dict[str, str]:
        return crypto.decrypt(self.credentials_encrypted)


class ProviderAvatar(models.Model):
    """An avatar made at a provider for one account: trained by A2E for a render (and reused by
    later renders), saved by TopView from a render, or customised at Tencent by a team owner from
    files on Tencent's own storage (kept for Tencent's other products; renders use footage)."""

    class Status(models.TextChoices):
        STARTING = "starting", "Starting"
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    avatar = models.ForeignKey(Avatar, models.CASCADE, related_name="provider_avatars")
    account = models.ForeignKey(ProviderAccount, models.CASCADE, related_name="avatars")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTING)
    task_id = models.CharField(max_length=200, blank=True)
    task_data = models.JSONField(default=dict, blank=True)
    provider_avatar_id = models.CharField(max_length=200, blank=True)
    raw_status = models.CharField(max_length=60, blank=True)
    note = models.CharField(max_length=200, blank=True, help_text="What the provider is waiting for, if anything.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["avatar", "account"], name="one_provider_avatar_per_account")]

    def __str__(self) -> str:
        return f"{self.avatar} at {self.account}"


class RemoteJob(models.Model):
    """The provider side of one render."""

    class State(models.TextChoices):
        PENDING = "pending", "Nothing sent yet"
        TRAINING = "training", "Waiting for the avatar"
        SUBMITTING = "submitting", "Sending the render"
        POLLING = "polling", "Rendering at the provider"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned (cancelled or replaced)"

    ACTIVE = [State.PENDING, State.TRAINING, State.SUBMITTING, State.POLLING]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    render = models.OneToOneField(Render, models.CASCADE, related_name="remote_job")
    # A removed account fails the render at its next poll instead of blocking the removal.
    account = models.ForeignKey(ProviderAccount, models.SET_NULL, null=True, related_name="jobs")
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    voice = models.CharField(max_length=100, blank=True, help_text="The provider's own voice for a script.")
    captions = models.BooleanField(default=False)
    options = models.JSONField(default=dict, blank=True, help_text="Options only this provider offers.")
    speech = models.FileField(max_length=300, blank=True, help_text="A script spoken by the built-in voice.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING, db_index=True)
    provider_avatar = models.ForeignKey(ProviderAvatar, models.SET_NULL, null=True, blank=True, related_name="jobs")
    task_id = models.CharField(max_length=200, blank=True)
    task_data = models.JSONField(default=dict, blank=True)
    claim_started_at = models.DateTimeField(null=True, blank=True, help_text="The render claim polling writes for.")
    poll_token = models.CharField(max_length=32, blank=True, help_text="The current poll schedule's; older ones stop.")
    polls = models.PositiveIntegerField(default=0)
    transient_errors = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    raw_status = models.CharField(max_length=60, blank=True)
    last_status = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.provider} {self.task_id or '(not sent)'}"

    @property
    def provider_label(self) -> str:
        return PROVIDERS[self.provider].label
