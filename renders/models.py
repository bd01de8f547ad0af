import re

from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from avatars.models import Avatar
from engine import speech
from engine.speech import Voice
from engine.timeline import LOOP_MODES
from studio.jobs import TeamOwnedJob
from studio.storage import download_url

UNSAFE_IN_FILENAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


class Render(TeamOwnedJob):
    class Driver(models.TextChoices):
        TEXT = "text", "Script (text to speech)"
        AUDIO = "audio", "Voice track"

    # The engine defines the loop modes; the studio only words them for creators.
    LoopMode = models.TextChoices(
        "LoopMode",
        [
            (mode.upper(), (mode, label))
            for mode, label in zip(
                LOOP_MODES,
                (
                    "Reverse splice (forward, then backward)",
                    "Forward splice (start over)",
                    "Circle (the last frame joins the first)",
                    "Custom segment (loop a part of the footage)",
                ),
                strict=True,
            )
        ],
    )

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]

    class Resolution(models.IntegerChoices):
        P480 = 480, "480p"
        P720 = 720, "720p"
        P1080 = 1080, "1080p"
        UHD = 2160, "4K"

    class Aspect(models.TextChoices):
        KEEP = "keep", "Keep the avatar's shape"
        PORTRAIT = "9:16", "9:16 vertical (Shorts, Reels, TikTok)"
        SQUARE = "1:1", "1:1 square"
        WIDE = "16:9", "16:9 widescreen"

    class FrameRate(models.IntegerChoices):
        FPS25 = 25, "25 fps"
        FPS30 = 30, "30 fps"

    class Quality(models.TextChoices):
        HIGH = "high", "High (constant quality, CRF 17)"
        MATCH = "match", "Match the avatar video's bitrate (1–9 Mbps)"

    class CaptionsSource(models.TextChoices):
        SCRIPT = "script", "From the script"
        TRANSCRIPT = "transcript", "From your transcript"
        MACHINE = "machine", "Machine-transcribed"

    class CaptionPosition(models.TextChoices):
        BOTTOM = "bottom", "Bottom"
        MIDDLE = "middle", "Middle"
        TOP = "top", "Top"

    class CaptionSize(models.TextChoices):
        SMALL = "small", "Small"
        MEDIUM = "medium", "Medium"
        LARGE = "large", "Large"

    class CaptionLook(models.TextChoices):
        OUTLINE = "outline", "White with a dark outline"
        BOX = "box", "White on a dark box"

    avatar = models.ForeignKey(Avatar, models.CASCADE, related_name="renders")
    title = models.CharField(max_length=120)
    driver = models.CharField(max_length=10, choices=Driver.choices, default=Driver.TEXT)
    script = models.TextField(blank=True)
    # A script's espeak voice; for a voice track, a voice of the language it is spoken in,
    # which tells alignment and captions what language to expect.
    voice = models.CharField(max_length=60, blank=True)
    speed = models.FloatField(default=1.0)
    volume = models.PositiveSmallIntegerField(default=0)
    audio = models.FileField(max_length=300, blank=True)
    audio_duration = models.FloatField(null=True, blank=True)
    transcript = models.TextField(blank=True, help_text="The voice track's words, when the creator gave them.")
    loop_mode = models.CharField(max_length=10, choices=LoopMode.choices, default=LoopMode.REVERSE)
    segment_start = models.FloatField(null=True, blank=True, help_text="Seconds; custom segment only.")
    segment_end = models.FloatField(null=True, blank=True, help_text="Seconds; custom segment only.")
    disable_intervals = models.JSONField(
        default=list, blank=True, help_text="[[start, end], …] seconds of the avatar's footage whose original mouth is kept."
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    video = models.FileField(max_length=300, blank=True)
    poster = models.FileField(max_length=300, blank=True)
    resolution = models.PositiveSmallIntegerField(
        choices=Resolution.choices, null=True, blank=True, help_text="Short edge; empty keeps the avatar's."
    )
    aspect = models.CharField(max_length=5, choices=Aspect.choices, default=Aspect.KEEP)
    upscale = models.BooleanField(default=False)
    fps = models.PositiveSmallIntegerField(choices=FrameRate.choices, null=True, blank=True)
    quality = models.CharField(max_length=6, choices=Quality.choices, default=Quality.HIGH)
    preview = models.BooleanField(default=False, help_text="Only the first seconds, to check before the full render.")
    burn_captions = models.BooleanField(default=False)
    caption_position = models.CharField(max_length=10, choices=CaptionPosition.choices, default=CaptionPosition.BOTTOM)
    caption_size = models.CharField(max_length=10, choices=CaptionSize.choices, default=CaptionSize.MEDIUM)
    caption_look = models.CharField(max_length=10, choices=CaptionLook.choices, default=CaptionLook.OUTLINE)
    captions_srt = models.FileField(max_length=300, blank=True)
    captions_vtt = models.FileField(max_length=300, blank=True)
    captions_source = models.CharField(max_length=12, choices=CaptionsSource.choices, blank=True)
    # What the creator should know about a finished render, e.g. that the transcript did not
    # match the voice track and the mouth followed the audio alone.
    warning = models.TextField(blank=True)
    duration = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self) -> str:
        return self.title

    def stored_files(self) -> list[models.fields.files.FieldFile]:
        return [f for f in (self.audio, self.video, self.poster, self.captions_srt, self.captions_vtt) if f]

    def download_filename(self, key: str) -> str:
        """What a downloaded file is saved as: the render's title, not the storage key."""
        title = " ".join(UNSAFE_IN_FILENAMES.sub(" ", self.title).split()).strip(". ")[:100] or "video"
        return f"{title}{key[key.rfind('.'):]}"

    @property
    def download_url(self) -> str:
        return download_url(self.video, self.download_filename(self.video.name))

    @property
    def srt_download_url(self) -> str:
        return download_url(self.captions_srt, self.download_filename(self.captions_srt.name))

    @property
    def vtt_download_url(self) -> str:
        return download_url(self.captions_vtt, self.download_filename(self.captions_vtt.name))

    @cached_property
    def _voice(self) -> Voice | None:
        return next((v for v in speech.list_voices() if v.id == self.voice), None)

    @property
    def voice_label(self) -> str:
        """The script's voice as the picker named it ("English (America) — female 3")."""
        return self._voice.name if self._voice else self.voice

    @property
    def captions_language(self) -> str:
        """The captions' BCP 47 language (a <track>'s srclang): the voice's; "" if unknown."""
        return self._voice.language if self._voice else ""

    @property
    def captions_label(self) -> str:
        """What a player's captions menu calls the track: the voice's language, without its
        gender, and whether a machine wrote the words down."""
        label = self._voice.name.split(" — ")[0] if self._voice else "Captions"
        if self.captions_source == self.CaptionsSource.MACHINE:
            return f"{label} (machine-transcribed)"
        return label


class RenderEvent(models.Model):
    """What happened to a render, in order: the timeline admins read when a job misbehaves."""

    render = models.ForeignKey(Render, models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=30)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%H:%M:%S}"
