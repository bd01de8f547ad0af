import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from studio.jobs import TeamOwnedJob, job_fail

NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _-]{2,50}$")
HEX_COLOUR_PATTERN = re.compile(r"^#[0-9a-f]{6}$")


def validate_avatar_name(value: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ValidationError(
            "Use 2 to 50 characters: letters, digits, spaces, underscores or hyphens."
        )


def validate_hex_colour(value: str) -> None:
    if not HEX_COLOUR_PATTERN.match(value):
        raise ValidationError("Give the colour as #rrggbb, for example #1f7a4d.")


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


class Avatar(TeamOwnedJob):
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
    background_colour = models.CharField(
        max_length=7, blank=True, validators=[validate_hex_colour], help_text="#rrggbb; colour backgrounds only."
    )
    background_image = models.FileField(max_length=300, blank=True)
    # Footage with several people: a photo of the one who speaks (Tencent's reference photo).
    reference_photo = models.FileField(max_length=300, blank=True)
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
    # A video larger than the prepared media (4K): kept at its own size for 4K renders.
    master = models.FileField(max_length=300, blank=True, help_text="Full-size footage, when larger than the media.")
    master_width = models.PositiveIntegerField(null=True, blank=True)
    master_height = models.PositiveIntegerField(null=True, blank=True)
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
    def problems(self) -> list[dict]:
        return self.preflight.get("problems", [])

    @property
    def warnings(self) -> list[str]:
        return self.report.get("warnings", [])

    @property
    def background_rgb(self) -> tuple[int, int, int] | None:
        if self.background != self.Background.COLOUR or not self.background_colour:
            return None
        return hex_to_rgb(self.background_colour)

    @property
    def largest_size(self) -> tuple[int | None, int | None]:
        """The most pixels a render of this avatar can have without upscaling: its master's
        size when it has one (a 4K upload), else the prepared media's."""
        if self.master and self.master_width and self.master_height:
            return self.master_width, self.master_height
        return self.width, self.height

    @property
    def source_bitrate(self) -> int | None:
        """Bits per second of the upload as it came (picture and sound): what "match the
        source's quality" aims for."""
        if not self.source_size or not self.duration:
            return None
        return int(self.source_size * 8 / self.duration)

    def stored_files(self) -> list[models.fields.files.FieldFile]:
        return [
            f
            for f in (self.source, self.media, self.poster, self.preview, self.library, self.background_image,
                      self.reference_photo, self.master)
            if f
        ]

    def fail(self, message: str, *, only_if: Q | None = None) -> bool:
        """Fail a job still being checked or prepared (by this claim); False if it settled meanwhile."""
        return job_fail(Avatar, pk=self.pk, from_statuses=self.RUNNING, only_if=only_if, message=message)
