"""What a worker does with an uploaded avatar: pre-flight checks, then preparation.

The task in `avatars.tasks` is a thin wrapper around `avatar_prepare`; everything here works
from the avatar's id and re-reads its row, so a redelivered or re-queued job is harmless.
"""

import logging
from pathlib import Path

from django.db.models import Q
from django.utils import timezone

from avatars.models import Avatar
from engine import pipeline, preflight
from engine.errors import Cancelled, EngineError
from studio.jobs import (
    TRANSIENT_ERRORS,
    Heartbeat,
    ProgressReporter,
    job_claim,
    job_claimed_by,
    job_release,
    job_scratch,
    job_update,
)
from studio.storage import delete_quietly, download, removed_on_failure, upload_each

log = logging.getLogger(__name__)

GENERIC_FAILURE = (
    "Something went wrong while preparing this avatar; try again, and if it keeps failing "
    "re-export the file as an H.264 MP4 or a PNG."
)
INFRASTRUCTURE_FAILURE = (
    "The studio's storage or database kept failing while preparing this avatar; try again in a "
    "few minutes, and tell your admin if it happens again."
)
STAGE_WEIGHTS = {"preview": 0.05, "normalising": 0.8, "tracking": 0.1, "poster": 0.05}


def avatar_prepare(avatar_id: str, *, last_try: bool = True) -> None:
    """Pre-flight the source, then normalise it and make the poster, preview and mouth library.

    On a transient infrastructure error the job goes back for the task's retry, or — on its
    `last_try` — fails with a sentence rather than waiting queued."""
    if not job_claim(
        Avatar, pk=avatar_id, from_statuses=[Avatar.Status.UPLOADED], to_status=Avatar.Status.CHECKING
    ):
        return  # deleted, or already claimed by another worker
    avatar = Avatar.objects.get(pk=avatar_id)
    claim = job_claimed_by(avatar)
    try:
        with (
            job_scratch(Avatar, pk=avatar.pk, attempt=avatar.attempts, running_statuses=Avatar.RUNNING) as scratch,
            Heartbeat(Avatar, avatar.pk, running_statuses=Avatar.RUNNING, claim=claim),
        ):
            _check_and_prepare(avatar, scratch, claim)
    except Cancelled:
        return
    except EngineError as error:
        avatar.fail(str(error), only_if=claim)
    except TRANSIENT_ERRORS:
        if last_try:
            log.exception("preparing avatar %s: storage or database kept failing", avatar_id)
            avatar.fail(INFRASTRUCTURE_FAILURE, only_if=claim)
        else:
            # back in line for the task's retry; the pre-flight verdict, if any, is kept
            job_release(Avatar, pk=avatar.pk, from_statuses=Avatar.RUNNING, entry_status=Avatar.Status.UPLOADED,
                        only_if=claim)
        raise
    except Exception:
        log.exception("preparing avatar %s failed", avatar_id)
        avatar.fail(GENERIC_FAILURE, only_if=claim)
        raise


def _check_and_prepare(avatar: Avatar, scratch: Path, claim: Q) -> None:
    source = download(avatar.source, scratch)
    reference = download(avatar.reference_photo, scratch) if avatar.reference_photo else None
    # A re-queued avatar that already passed its checks skips straight to preparation.
    if not avatar.preflight.get("ok"):
        if not _passes_preflight(avatar, source, claim, reference):
            return
    moved = job_update(
        Avatar,
        pk=avatar.pk,
        from_statuses=[Avatar.Status.CHECKING],
        only_if=claim,
        status=Avatar.Status.PREPARING,
        stage="preview",
        heartbeat_at=timezone.now(),
    )
    if not moved:
        return
    background = avatar.background_rgb
    if avatar.background == Avatar.Background.IMAGE and avatar.background_image:
        background = download(avatar.background_image, scratch)
    reporter = ProgressReporter(
        Avatar, avatar.pk, running_status=Avatar.Status.PREPARING, weights=STAGE_WEIGHTS, claim=claim
    )
    prepared = pipeline.prepare_avatar(
        kind=avatar.kind,
        source=source,
        workdir=scratch / "out",
        background=background,
        progress=reporter,
        should_cancel=reporter.should_cancel,
        reference=reference if avatar.kind == Avatar.Kind.VIDEO else None,
    )
    _store_prepared(avatar, prepared, claim)


def _passes_preflight(avatar: Avatar, source: Path, claim: Q, reference: Path | None) -> bool:
    Avatar.objects.filter(claim, pk=avatar.pk).update(stage="checking", heartbeat_at=timezone.now())
    report = preflight.check_avatar_source(source, reference=reference)
    avatar.preflight = {**report.to_dict(), "ok": report.ok}
    if report.ok:
        Avatar.objects.filter(claim, pk=avatar.pk).update(preflight=avatar.preflight)
        return True
    job_update(
        Avatar,
        pk=avatar.pk,
        from_statuses=[Avatar.Status.CHECKING],
        only_if=claim,
        status=Avatar.Status.REJECTED,
        preflight=avatar.preflight,
        error=report.problems[0].message,
        finished_at=timezone.now(),
    )
    return False


def _store_prepared(avatar: Avatar, prepared: pipeline.PreparedAvatar, claim: Q) -> None:
    """Upload the outputs and mark the avatar ready; nothing stored outlives a lost race."""
    outputs = {
        "media": (prepared.media_path, f"media{prepared.media_path.suffix}"),
        "poster": (prepared.poster_path, f"poster{prepared.poster_path.suffix}"),
        "preview": (prepared.preview_path, "preview.mp4"),
        "library": (prepared.library_path, "library.npz"),
        "master": (prepared.master_path, "master.mp4"),
    }
    with removed_on_failure() as written:
        stored = upload_each(outputs, prefix=avatar.key_prefix, written=written)
        old = [f.name for f in (avatar.media, avatar.poster, avatar.preview, avatar.library, avatar.master) if f]
        finished = job_update(
            Avatar,
            pk=avatar.pk,
            from_statuses=[Avatar.Status.PREPARING],
            only_if=claim,
            status=Avatar.Status.READY,
            stage="",
            progress=100,
            **{"library": "", "master": "", **stored},
            report=prepared.report or {},
            width=prepared.width,
            height=prepared.height,
            master_width=prepared.master_width,
            master_height=prepared.master_height,
            fps=prepared.fps,
            duration=prepared.duration,
            finished_at=timezone.now(),
        )
    delete_quietly(old if finished else written)
