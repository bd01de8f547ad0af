import uuid
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from avatars.models import Avatar
from engine import speech
from engine.speech import VoiceTrack
from providers.models import ProviderAccount
from providers.services import remote_job_create
from renders.models import Render, RenderEvent
from studio.models import Team
from studio.storage import delete_quietly, removed_on_failure, upload
from studio.uploads import local_path
from webhooks.services import webhook_render_finished


@dataclass(frozen=True)
class ProviderChoice:
    """A render made by a provider instead of the built-in engine (providers/)."""

    account: ProviderAccount
    voice: str = ""
    options: dict = field(default_factory=dict)


def render_create(
    *,
    team: Team,
    user: AbstractUser,
    avatar: Avatar,
    title: str,
    driver: str,
    script: str = "",
    voice: str = "",
    speed: float = 1.0,
    volume: int = 0,
    audio: UploadedFile | None = None,
    voice_track: VoiceTrack | None = None,
    loop_mode: str = Render.LoopMode.REVERSE,
    segment_start: float | None = None,
    segment_end: float | None = None,
    disable_intervals: list[list[float]] | None = None,
    transcript: str = "",
    language: str = "",
    burn_captions: bool = False,
    caption_position: str = Render.CaptionPosition.BOTTOM,
    caption_size: str = Render.CaptionSize.MEDIUM,
    caption_look: str = Render.CaptionLook.OUTLINE,
    resolution: int | None = None,
    aspect: str = Render.Aspect.KEEP,
    upscale: bool = False,
    fps: int | None = None,
    quality: str = Render.Quality.HIGH,
    preview: bool = False,
    provider: ProviderChoice | None = None,
) -> Render:
    render = Render(
        id=uuid.uuid4(),
        team=team,
        avatar=avatar,
        created_by=user,
        title=title,
        driver=driver,
        loop_mode=loop_mode,
        segment_start=segment_start,
        segment_end=segment_end,
        disable_intervals=disable_intervals or [],
        burn_captions=burn_captions,
        caption_position=caption_position,
        caption_size=caption_size,
        caption_look=caption_look,
        resolution=resolution,
        aspect=aspect,
        upscale=upscale,
        fps=fps,
        quality=quality,
        preview=preview,
    )
    if driver == Render.Driver.TEXT:
        render.script, render.voice, render.speed, render.volume = script, voice, speed, volume
    else:
        render.voice, render.transcript = language, transcript
    with removed_on_failure() as written:
        if driver == Render.Driver.AUDIO:
            with local_path(audio) as path:
                # The form's check of this very file; the API and tests may skip the form.
                voice_track = voice_track or speech.check_audio_driver(path)
                written.append(upload(path, f"{render.key_prefix}voice.{voice_track.extension}"))
            render.audio.name = written[-1]
            render.audio_duration = voice_track.seconds
        with transaction.atomic():
            render.save(force_insert=True)
            RenderEvent.objects.create(render=render, kind="queued")
            if provider is not None:
                remote_job_create(render=render, account=provider.account, voice=provider.voice,
                                  options=provider.options)
            transaction.on_commit(lambda: render_run_enqueue(render.pk))
    return render


# A preview is seconds of work a creator waits on before committing to a long render, so it
# has its own queue: every worker that takes renders lists it first (the broker hands out
# queues in the order a worker lists them), and the Procfile's preview worker takes nothing
# else, so a preview never waits behind renders queued or running before it.
PREVIEW_QUEUE = "preview"


def render_run_enqueue(render_id) -> None:
    from renders.tasks import render_run

    # Read from the row, so the sweep's re-queue of a stalled preview keeps it a preview.
    preview = Render.objects.filter(pk=render_id, preview=True).exists()
    render_run.apply_async((str(render_id),), queue=PREVIEW_QUEUE if preview else None)


@transaction.atomic
def render_cancel(*, render: Render) -> bool:
    """Mark the render cancelled; a running worker sees it between frames and stops."""
    moved = Render.objects.filter(
        pk=render.pk, status__in=[Render.Status.QUEUED, Render.Status.RUNNING]
    ).update(status=Render.Status.CANCELLED, eta_seconds=None, finished_at=timezone.now())
    if moved:
        RenderEvent.objects.create(render=render, kind="cancelled")
        transaction.on_commit(lambda: webhook_render_finished(render_id=render.pk))
    return bool(moved)


@transaction.atomic
def render_retry(*, render: Render) -> bool:
    moved = Render.objects.filter(
        pk=render.pk, status__in=[Render.Status.FAILED, Render.Status.CANCELLED]
    ).update(
        status=Render.Status.QUEUED,
        error="",
        progress=0,
        stage="",
        eta_seconds=None,
        attempts=0,
        updated_at=timezone.now(),
        finished_at=None,
    )
    if moved:
        RenderEvent.objects.create(render=render, kind="retried")
        transaction.on_commit(lambda: render_run_enqueue(render.pk))
    return bool(moved)


def render_delete(*, render: Render) -> None:
    names = [f.name for f in render.stored_files()]
    with transaction.atomic():
        render.delete()
        transaction.on_commit(lambda: delete_quietly(names))
