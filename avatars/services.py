import logging
import uuid

from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from avatars.models import Avatar
from engine import media, preflight
from studio.models import Team
from studio.storage import delete_quietly, removed_on_failure, upload
from studio.uploads import local_path

log = logging.getLogger(__name__)

def avatar_create(
    *,
    team: Team,
    user: AbstractUser,
    name: str,
    gender: str,
    source: UploadedFile,
    background: str = Avatar.Background.NONE,
    background_colour: str = "",
    background_image: UploadedFile | None = None,
    reference_photo: UploadedFile | None = None,
) -> Avatar:
    """Store the upload under a generated key, create the row, and queue the checks.

    Files are written before the row commits; if anything fails after that, they are
    removed again so no orphan is left in storage.
    """
    with local_path(source) as source_path:
        kind, mime = preflight.source_kind(source_path, name=source.name)
    extension = media.EXTENSION_FOR_TYPE[mime]
    background_extension = ""
    if background == Avatar.Background.IMAGE and background_image is not None:
        with local_path(background_image) as image_path:
            background_extension = preflight.check_background_image(image_path)

    avatar = Avatar(
        id=uuid.uuid4(),
        team=team,
        created_by=user,
        name=name,
        gender=gender,
        kind=kind,
        source_name=source.name[:255],
        source_size=source.size,
        source_mime=mime,
        consent_at=timezone.now(),
        background=background,
        background_colour=background_colour if background == Avatar.Background.COLOUR else "",
    )
    with removed_on_failure() as written:
        with local_path(source) as source_path:
            written.append(upload(source_path, f"{avatar.key_prefix}source.{extension}"))
        avatar.source.name = written[-1]
        if background_extension:
            with local_path(background_image) as image_path:
                written.append(upload(image_path, f"{avatar.key_prefix}background.{background_extension}"))
            avatar.background_image.name = written[-1]
        if reference_photo is not None:
            with local_path(reference_photo) as photo_path:
                reference_extension = preflight.check_reference_photo(photo_path)
                written.append(upload(photo_path, f"{avatar.key_prefix}reference.{reference_extension}"))
            avatar.reference_photo.name = written[-1]
        with transaction.atomic():
            avatar.full_clean(exclude=["source", "background_image", "reference_photo"])
            avatar.save(force_insert=True)
            transaction.on_commit(lambda: avatar_prepare_enqueue(avatar.pk))
    return avatar


def avatar_prepare_enqueue(avatar_id) -> None:
    from avatars.tasks import avatar_prepare

    avatar_prepare.delay(str(avatar_id))


@transaction.atomic
def avatar_retry(*, avatar: Avatar) -> bool:
    """Put a failed avatar back in line; rejected ones need a new file instead."""
    moved = Avatar.objects.filter(pk=avatar.pk, status=Avatar.Status.FAILED).update(
        status=Avatar.Status.UPLOADED, error="", progress=0, stage="", attempts=0, updated_at=timezone.now()
    )
    if moved:
        transaction.on_commit(lambda: avatar_prepare_enqueue(avatar.pk))
    return bool(moved)


def avatar_delete(*, avatar: Avatar) -> None:
    """Delete the avatar, its renders and every file they own."""
    names = [f.name for f in avatar.stored_files()]
    for render in avatar.renders.all():
        names.extend(f.name for f in render.stored_files())
    with transaction.atomic():
        avatar.delete()
        transaction.on_commit(lambda: delete_quietly(names))
