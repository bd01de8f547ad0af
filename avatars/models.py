import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from studio.jobs import JobFields
from studio.models import Team

NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _-]{2,50}$")
COLOUR_PATTERN = re.compile(r"^rgb\((\d{1,3}),(\d{1,3}),(\d{1,3})\)$")


def validate_avatar_name(value: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ValidationError(
            "Use 2 to 50 characters: letters, digits, spaces, underscores or hyphens."
        )


def parse_colour(value: str) -> tuple[int, int, int] | None:
    match = COLOUR_PATTERN.match(value.replace(" ", ""))
    if not match:
        return None
    rgb = tuple(int(part) for part in match.groups())
    return rgb if all(0 <= part <= 255 for part in rgb) else None


class Avatar(JobFields):
    class Kind(models.TextChoices):
        VIDEO = "video", "Video"
        PHOTO = "photo", "Photo"

    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        CHECKING = "checking", "Checking"
        PREPARING = "preparing", "Preparing"
        READY = "ready", "Ready"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    class Background(models.TextChoices):
        NONE = "none", "Keep the original background"
        COLOUR = "colour", "Replace with a colour"
        IMAGE = "image", "Replace with an image"

    RUNNING = [Status.CHECKING, Status.PREPARING]
    TERMINAL = [Status.READY, Status.REJECTED, Status.FAILED]

    team = models.ForeignKey(Team, models.CASCADE, related_name="avatars")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+"
    )
    name = models.CharField(max_length=50, validators=[validate_avatar_name])
    gender = models.CharField(max_length=10, choices=Gender.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices, blank=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.UPLOADED, db_index=True
    )
    source = models.FileField(max_length=300)
    source_name = models.CharField(max_length=255, blank=True, help_text="As uploaded.")
    source_mime = models.CharField(max_length=60, blank=True)
    source_size = models.BigIntegerField(default=0)
    consent_at = models.DateTimeField(
        null=True, help_text="When the uploader confirmed they are this person or have consent."
    )
    background = models.CharField(
        max_length=10, choices=Background.choices, default=Background.NONE
    )
    background_colour = models.CharField(max_length=20, blank=True)
    background_image = models.FileField(max_length=300, blank=True)
    preflight = models.JSONField(default=dict, blank=True)
    media = models.FileField(max_length=300, blank=True, help_text="Normalised source.")
    poster = models.FileField(max_length=300, blank=True)
    preview = models.FileField(max_length=300, blank=True)
    library = models.FileField(
        max_length=300, blank=True, help_text="Tracked face and mouth data for lip sync (video avatars)."
    )
    report = models.JSONField(
        default=dict, blank=True, help_text="Preparation report: usable frames, viseme coverage, warnings."
    )
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="avatar_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def key_prefix(self) -> str:
        return f"teams/{self.team_id}/avatars/{self.pk}/"

    @property
    def problems(self) -> list[dict]:
        return self.preflight.get("problems", [])

    @property
    def warnings(self) -> list[str]:
        return self.report.get("warnings", [])

    @property
    def background_rgb(self) -> tuple[int, int, int] | None:
        return parse_colour(self.background_colour) if self.background == "colour" else None

    def stored_files(self) -> list[models.fields.files.FieldFile]:
        return [
            f
            for f in (self.source, self.media, self.poster, self.preview, self.library, self.background_image)
            if f
        ]

    def mark_failed(self, message: str) -> None:
        self.status = self.Status.FAILED
        self.error = message
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "finished_at", "updated_at"])
