"""What the API accepts and answers, as OpenAPI documents it at /api/docs."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import NonNegativeFloat

from engine.timeline import LOOP_MODES

LoopMode = Literal[LOOP_MODES]  # type: ignore[valid-type]


class ErrorDetail(Schema):
    code: str = Field(examples=["script_too_short"])
    message: str = Field(description="A sentence saying what to change.")
    field: str | None = Field(None, description="The request field the problem is about, if any.")


class ErrorOut(Schema):
    error: ErrorDetail


# ---- voices ------------------------------------------------------------------------------------


class VoiceOut(Schema):
    id: str = Field(examples=["en-us+f3"], description="Pass as `voice` when rendering a script.")
    name: str
    language: str = Field(examples=["en-US"])
    gender: Literal["female", "male"]


class VoiceList(Schema):
    items: list[VoiceOut]


# ---- uploads -----------------------------------------------------------------------------------


class UploadIn(Schema):
    kind: Literal["video", "photo", "audio"] = Field(
        description="video: an avatar's footage (MP4/MOV, up to 5 GB); photo: a photo avatar or a background "
        "image (JPEG/PNG/WebP, up to 10 MB); audio: a voice track (WAV/MP3/M4A/AAC/OGG/WMA, up to 100 MB)."
    )
    content_type: str = Field(examples=["video/mp4"], description="The file's MIME type; the upload must send the same.")
    filename: str = Field("", max_length=255, description="Shown in the studio; optional.")


class UploadCredential(Schema):
    file_id: UUID = Field(description="Name the file by this id in a later request; it works once.")
    kind: str
    url: str = Field(description="POST the file here as multipart/form-data: every entry of `fields`, then the file as `file`.")
    fields: dict[str, str]
    expires_at: datetime
    max_bytes: int


class UploadOut(Schema):
    file_id: UUID
    kind: str
    status: Literal["pending", "received", "used"]
    size: int | None
    expires_at: datetime


# ---- avatars -----------------------------------------------------------------------------------


class AvatarIn(Schema):
    name: str = Field(examples=["Presenter"], description="2–50 characters: letters, digits, spaces, _ and -; unique in the team.")
    gender: Literal["female", "male"] = Field(description="Chooses the default voice for this avatar.")
    consent: bool = Field(
        description="true confirms you are the person in the file, or have their written consent to make an avatar of them."
    )
    file_id: UUID | None = Field(None, description="A video or photo upload (POST /uploads).")
    video_url: str | None = Field(None, description="Or fetch the footage from this http(s) URL.")
    image_url: str | None = Field(None, description="Or fetch a photo from this http(s) URL.")
    background_colour: str | None = Field(None, examples=["#1f7a4d"], description="Replace the background with this colour.")
    background_image_file_id: UUID | None = Field(None, description="Or with this photo upload.")
    background_image_url: str | None = Field(None, description="Or with the image at this URL.")
    reference_photo_file_id: UUID | None = Field(
        None, description="Footage with several people: a photo upload of the one who should speak."
    )
    reference_photo_url: str | None = Field(None, description="Or that photo from this URL.")


class PreflightProblem(Schema):
    field: str
    code: str
    message: str


class Preflight(Schema):
    ok: bool | None = Field(None, description="null until the checks have run.")
    problems: list[PreflightProblem] = []


class AvatarUrls(Schema):
    preview: str | None
    poster: str | None


class AvatarOut(Schema):
    id: UUID
    name: str
    gender: str
    kind: str = Field(description="video or photo.")
    status: Literal["uploaded", "checking", "preparing", "ready", "rejected", "failed"]
    stage: str
    progress: int = Field(description="0–100.")
    error: str | None = Field(description="Why preparation failed, as a sentence.")
    preflight: Preflight = Field(description="The upload checks; `problems` say why a rejected avatar was refused.")
    warnings: list[str]
    background: str
    background_colour: str | None
    width: int | None
    height: int | None
    fps: float | None
    duration: float | None
    urls: AvatarUrls
    created_at: datetime
    finished_at: datetime | None


class AvatarList(Schema):
    items: list[AvatarOut]
    total: int


# ---- renders -----------------------------------------------------------------------------------


class RenderIn(Schema):
    avatar_id: UUID = Field(description="A ready avatar of the team.")
    title: str | None = Field(None, max_length=120, description="Defaults to the script's first words.")
    script: str | None = Field(None, description="Text (or SSML inside <speak>…</speak>) to speak; 4 to 2,000 characters.")
    voice: str | None = Field(None, description="A voice id from GET /voices; defaults to one matching the avatar.")
    speed: float = Field(1.0, description="0.5–1.5.")
    volume: int = Field(0, description="0 is normal, 10 loudest.")
    audio_file_id: UUID | None = Field(None, description="Instead of a script: a voice track upload to lip-sync to.")
    audio_url: str | None = Field(None, description="Or fetch the voice track from this URL.")
    loop_mode: LoopMode = Field("reverse", description="What the footage does when the speech outlasts it.")
    segment_start: NonNegativeFloat | None = Field(None, description="Seconds; circle and custom loop modes.")
    segment_end: NonNegativeFloat | None = Field(None, description="Seconds; custom loop mode.")
    disable_intervals: list[tuple[NonNegativeFloat, NonNegativeFloat]] = Field(
        [], description="Up to 5 [start, end] ranges of the footage, in seconds, during which the original mouth is kept."
    )
    transcript: str | None = Field(
        None, description="With a voice track: the words spoken, so the mouth follows each sound and the captions show them."
    )
    language: str | None = Field(
        None, examples=["en-us"], description="With a voice track: the language spoken (a voice id's language part, e.g. en-us, fr)."
    )
    burn_captions: bool = Field(False, description="Also draw the captions on the picture (captions files are always made).")
    caption_position: Literal["bottom", "middle", "top"] = "bottom"
    caption_size: Literal["small", "medium", "large"] = "medium"
    caption_look: Literal["outline", "box"] = "outline"
    resolution: Literal[480, 720, 1080, 2160] | None = Field(None, description="The video's short edge; null keeps the avatar's.")
    aspect: Literal["keep", "9:16", "1:1", "16:9"] = Field("keep", description="A new shape is cropped around the face.")
    upscale: bool = Field(False, description="Allow a resolution beyond the avatar's own.")
    fps: Literal[25, 30] | None = Field(None, description="null keeps the avatar's frame rate.")
    quality: Literal["high", "match"] = Field("high", description="high: constant quality; match: the avatar video's bitrate.")
    preview: bool = Field(False, description="Only the first seconds, to check before the full render.")
    callback_url: str | None = Field(None, description="Receives a signed POST when the render finishes, fails or is cancelled.")
    engine: str = Field("local", description='"local" (the built-in engine) or the id of one of the team\'s provider accounts.')
    provider_voice: str | None = Field(None, description="With a provider engine and a script: the provider's own voice id.")
    provider_options: dict[str, str | int | float | bool] = Field(
        {}, description="With a provider engine: that provider's own options by name (docs/providers.md)."
    )


class RenderUrls(Schema):
    video: str | None
    poster: str | None
    captions_srt: str | None
    captions_vtt: str | None


class RenderOut(Schema):
    id: UUID
    avatar_id: UUID
    title: str
    driver: Literal["text", "audio"]
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str
    progress: int = Field(description="0–100.")
    eta_seconds: int | None = Field(description="Estimated seconds left while running, when known.")
    error: str | None = Field(description="Why the render failed, as a sentence.")
    voice: str
    loop_mode: str
    preview: bool
    engine: str = Field(description='"local", or the id of the provider account that renders it.')
    captions_source: str | None = Field(description="script, transcript or machine: where the captions' words came from.")
    warning: str | None = Field(description="Something to know about a finished render, as a sentence.")
    duration: float | None = Field(description="Seconds of the finished video.")
    width: int | None
    height: int | None
    size_bytes: int | None
    urls: RenderUrls
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RenderList(Schema):
    items: list[RenderOut]
    total: int
