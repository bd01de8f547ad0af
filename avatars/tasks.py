import logging
import tempfile
from pathlib import Path

from celery import shared_task
from django.utils import timezone

from avatars.models import Avatar
from engine import pipeline, preflight
from engine.errors import Cancelled, EngineError
from studio.jobs import ProgressReporter, job_claim
from studio.storage import delete_quietly, download, upload

log = logging.getLogger(__name__)

GENERIC_FAILURE = (
    "Something went wrong while preparing this avatar; try again, and if it keeps failing "
    "re-export the file as an H.264 MP4 or a PNG."
)


@shared_task(acks_late=True)
def avatar_prepare(avatar_id: str) -> None:
    """Pre-flight the source, then normalise it and make the poster and preview."""
    if not job_claim(
        Avatar, pk=avatar_id, from_statuses=[Avatar.Status.UPLOADED], to_status=Avatar.Status.CHECKING
    ):
        return  # deleted, or already claimed by another worker
    avatar = Avatar.objects.get(pk=avatar_id)
    try:
        with tempfile.TemporaryDirectory(prefix="avatar-") as scratch:
            _check_and_prepare(avatar, Path(scratch))
    except Cancelled:
        return
    except EngineError as error:
        avatar.mark_failed(str(error))
    except Exception:
        log.exception("preparing avatar %s failed", avatar_id)
        avatar.mark_failed(GENERIC_FAILURE)
        raise


def _check_and_prepare(avatar: Avatar, scratch: Path) -> None:
    source = download(avatar.source, scratch)
    # A re-queued avatar that already passed its checks skips straight to preparation.
    if not avatar.preflight.get("ok"):
        _set_stage(avatar, "checking")
        report = preflight.check_avatar_source(source)
        avatar.preflight = {**report.to_dict(), "ok": report.ok}
        if not report.ok:
            Avatar.objects.filter(pk=avatar.pk, status=Avatar.Status.CHECKING).update(
                status=Avatar.Status.REJECTED,
                preflight=avatar.preflight,
                error=report.problems[0].message,
                finished_at=timezone.now(),
            )
            return
        Avatar.objects.filter(pk=avatar.pk).update(preflight=avatar.preflight)

    moved = Avatar.objects.filter(pk=avatar.pk, status=Avatar.Status.CHECKING).update(
        status=Avatar.Status.PREPARING, stage="preview", heartbeat_at=timezone.now()
    )
    if not moved:
        return
    background = avatar.background_rgb
    if avatar.background == Avatar.Background.IMAGE and avatar.background_image:
        background = download(avatar.background_image, scratch)
    reporter = ProgressReporter(
        Avatar,
        avatar.pk,
        running_status=Avatar.Status.PREPARING,
        weights={"preview": 0.05, "normalising": 0.8, "tracking": 0.1, "poster": 0.05},
    )
    prepared = pipeline.prepare_avatar(
        kind=avatar.kind,
        source=source,
        workdir=scratch / "out",
        background=background,
        progress=reporter,
        should_cancel=reporter.should_cancel,
    )
    stored = []
    try:
        stored.append(upload(prepared.media_path, f"{avatar.key_prefix}media{prepared.media_path.suffix}"))
        stored.append(upload(prepared.poster_path, f"{avatar.key_prefix}poster{prepared.poster_path.suffix}"))
        stored.append(upload(prepared.preview_path, f"{avatar.key_prefix}preview.mp4"))
        if prepared.library_path:
            stored.append(upload(prepared.library_path, f"{avatar.key_prefix}library.npz"))
        old = [f.name for f in (avatar.media, avatar.poster, avatar.preview, avatar.library) if f]
        finished = Avatar.objects.filter(pk=avatar.pk, status=Avatar.Status.PREPARING).update(
            status=Avatar.Status.READY,
            stage="",
            progress=100,
            media=stored[0],
            poster=stored[1],
            preview=stored[2],
            library=stored[3] if prepared.library_path else "",
            report=prepared.report or {},
            width=prepared.width,
            height=prepared.height,
            fps=prepared.fps,
            duration=prepared.duration,
            finished_at=timezone.now(),
        )
    except BaseException:
        delete_quietly(stored)
        raise
    if finished:
        delete_quietly(old)
    else:
        delete_quietly(stored)


def _set_stage(avatar: Avatar, stage: str) -> None:
    Avatar.objects.filter(pk=avatar.pk).update(stage=stage, heartbeat_at=timezone.now())
