"""What a worker does with a queued render: speech, frames, encode, store.

The task in `renders.tasks` is a thin wrapper around `render_run`; everything here works from
the render's id and re-reads its row, so a redelivered or re-queued job is harmless.
"""

import logging
from pathlib import Path

from django.db.models import Q
from django.utils import timezone

from engine import pipeline
from engine.burnin import caption_style
from engine.output import OutputFormat
from engine.errors import Cancelled, EngineError
from providers.services import provider_render_start, render_uses_provider
from renders.models import Render, RenderEvent
from studio.jobs import (
    TRANSIENT_ERRORS,
    Heartbeat,
    ProgressReporter,
    job_claim,
    job_claimed_by,
    job_fail,
    job_release,
    job_scratch,
    job_update,
)
from studio.storage import delete_quietly, download, removed_on_failure, upload_each
from webhooks.services import webhook_render_finished

log = logging.getLogger(__name__)

GENERIC_FAILURE = "Something went wrong while rendering; retry, and if it fails again contact your admin."
INFRASTRUCTURE_FAILURE = (
    "The studio's storage or database kept failing while rendering; retry in a few minutes, "
    "and tell your admin if it happens again."
)
STAGE_WEIGHTS = {"speech": 0.1, "frames": 0.85, "finalize": 0.05}
RUNNING = [Render.Status.RUNNING]


def render_run(render_id: str, *, last_try: bool = True) -> None:
    """Run one attempt; on a transient infrastructure error, hand the job back for the task's
    retry, or — on its `last_try` — fail it with a sentence rather than leave it queued."""
    if not job_claim(Render, pk=render_id, from_statuses=[Render.Status.QUEUED], to_status=Render.Status.RUNNING):
        return  # deleted, cancelled before it started, or claimed elsewhere
    render = Render.objects.select_related("avatar").get(pk=render_id)
    claim = job_claimed_by(render)
    RenderEvent.objects.create(render=render, kind="started", message=f"attempt {render.attempts}")
    if render_uses_provider(render.pk):
        provider_render_start(render_id=render.pk)  # holds the claim; fails the render itself
        return
    try:
        with (
            job_scratch(Render, pk=render.pk, attempt=render.attempts, running_statuses=RUNNING) as scratch,
            Heartbeat(Render, render.pk, running_statuses=RUNNING, claim=claim),
        ):
            _render(render, scratch, claim)
    except Cancelled:
        return  # the row already says cancelled; the engine removed its partial output
    except EngineError as error:
        _fail(render, str(error), claim=claim)
    except TRANSIENT_ERRORS as error:
        if last_try:
            log.exception("render %s: storage or database kept failing", render_id)
            _fail(render, INFRASTRUCTURE_FAILURE, detail=repr(error), claim=claim)
        elif job_release(Render, pk=render.pk, from_statuses=RUNNING, entry_status=Render.Status.QUEUED,
                         only_if=claim):
            RenderEvent.objects.create(render=render, kind="retrying", message=repr(error))
        raise
    except Exception as error:
        log.exception("render %s failed", render_id)
        _fail(render, GENERIC_FAILURE, detail=repr(error), claim=claim)
        raise
    finally:
        # The render's callback, if it has one, hears of a terminal state (a no-op otherwise).
        webhook_render_finished(render_id=render_id)


def _render(render: Render, scratch: Path, claim: Q) -> None:
    reporter = ProgressReporter(
        Render, render.pk, running_status=Render.Status.RUNNING, weights=STAGE_WEIGHTS, claim=claim
    )
    reporter("preparing", 0.0)
    avatar = render.avatar
    speaks_script = render.driver == Render.Driver.TEXT
    output_format = OutputFormat(
        resolution=render.resolution,
        aspect=render.aspect,
        upscale=render.upscale,
        fps=render.fps,
        match_bitrate=avatar.source_bitrate if render.quality == Render.Quality.MATCH else None,
    )
    # The full-size footage (4K) is fetched only for a render that asks for its pixels.
    master = (download(avatar.master, scratch) if avatar.master and avatar.width and avatar.height
              and pipeline.uses_master(output_format, avatar.width, avatar.height) else None)
    request = pipeline.RenderRequest(
        avatar_kind=avatar.kind,
        avatar_media=download(avatar.media, scratch),
        output=scratch / "render.mp4",
        poster=scratch / "poster.jpg",
        loop_mode=render.loop_mode,
        library=download(avatar.library, scratch) if avatar.library else None,
        segment_start=render.segment_start,
        segment_end=render.segment_end,
        disable_intervals=[tuple(pair) for pair in render.disable_intervals],
        text=render.script if speaks_script else None,
        voice=render.voice,
        speed=render.speed,
        volume=render.volume,
        audio=None if speaks_script else download(render.audio, scratch),
        transcript=None if speaks_script else render.transcript or None,
        output_format=output_format,
        avatar_master=master,
        caption_style=caption_style(render.caption_position, render.caption_size, render.caption_look)
        if render.burn_captions else None,
        preview_seconds=pipeline.PREVIEW_SECONDS if render.preview else None,
        fps=render.fps,
    )
    result = pipeline.render(request, progress=reporter, should_cancel=reporter.should_cancel)

    outputs = {
        "video": (result.video_path, "video.mp4"),
        "poster": (result.poster_path, "poster.jpg"),
        "captions_srt": (result.srt_path, "captions.srt"),
        "captions_vtt": (result.vtt_path, "captions.vtt"),
    }
    with removed_on_failure() as written:
        stored = upload_each(outputs, prefix=render.key_prefix, written=written)
        old = [f.name for f in (render.video, render.poster, render.captions_srt, render.captions_vtt) if f]
        finished = job_update(
            Render,
            pk=render.pk,
            from_statuses=RUNNING,
            only_if=claim,
            status=Render.Status.SUCCEEDED,
            stage="",
            progress=100,
            eta_seconds=None,
            # a render without captions (a voice track in a language we cannot transcribe)
            # clears any an earlier attempt stored
            **{"captions_srt": "", "captions_vtt": "", **stored},
            captions_source=result.captions_source or "",
            warning=" ".join(result.warnings),
            duration=result.duration,
            width=result.width,
            height=result.height,
            size_bytes=result.video_path.stat().st_size,
            finished_at=timezone.now(),
        )
    if finished:
        delete_quietly(old)
        RenderEvent.objects.create(render=render, kind="succeeded", message=f"{result.duration:.2f} s")
        for warning in result.warnings:
            RenderEvent.objects.create(render=render, kind="warning", message=warning)
    else:  # cancelled while uploading
        delete_quietly(written)


def _fail(render: Render, message: str, *, claim: Q, detail: str = "") -> None:
    if job_fail(Render, pk=render.pk, from_statuses=RUNNING, only_if=claim, message=message, eta_seconds=None):
        RenderEvent.objects.create(render=render, kind="failed", message=detail or message)
