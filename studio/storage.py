"""Moving files between storage (local MEDIA_ROOT or S3) and a worker's scratch directory.

Web and workers share nothing but the database and storage, so a worker always copies its
inputs down and its outputs up, even when storage happens to be a local folder.
"""

import logging
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.utils.http import content_disposition_header

from engine.media import content_type_for_name

log = logging.getLogger(__name__)


def download_url(field: FieldFile, filename: str) -> str:
    """A URL that saves the file as `filename` instead of playing it.

    S3 answers the presigned URL with the disposition it was signed with; the local media view
    looks the name up on the file's owner (see `studio.media`), so the query only asks for it.
    """
    if settings.AWS_STORAGE_BUCKET_NAME:
        disposition = content_disposition_header(as_attachment=True, filename=filename)
        return field.storage.url(field.name, parameters={"ResponseContentDisposition": disposition})
    return f"{field.url}?download"


def download(field: FieldFile, directory: Path) -> Path:
    target = directory / Path(field.name).name
    with field.storage.open(field.name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1024 * 1024)
    return target


def upload(path: Path, key: str) -> str:
    """Store a local file under exactly `key` (keys are generated, so never clash)."""
    with open(path, "rb") as handle:
        wrapped = File(handle, name=Path(key).name)
        wrapped.content_type = content_type_for_name(key)
        return default_storage.save(key, wrapped)


def upload_each(
    outputs: dict[str, tuple[Path | None, str]], *, prefix: str, written: list[str]
) -> dict[str, str]:
    """Store each output `field: (local path or None, name)` under `prefix`; field → key.

    Each key joins `written` the moment it exists, so a `removed_on_failure` block around
    the uploads and the row update that follows leaves nothing behind.
    """
    stored: dict[str, str] = {}
    for field, (path, name) in outputs.items():
        if path:
            stored[field] = upload(path, f"{prefix}{name}")
            written.append(stored[field])
    return stored


def delete_quietly(names: list[str]) -> None:
    """Remove stored files after their rows are gone; a missing file is not an error."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # storage outages must not resurrect a deleted row
            log.exception("could not delete stored file %s", name)


@contextmanager
def removed_on_failure() -> Iterator[list[str]]:
    """Collect the keys a block stores; if the block fails, remove them again.

    Files are written before the rows that point at them commit, so a failure in between must
    not leave orphans in storage.
    """
    written: list[str] = []
    try:
        yield written
    except BaseException:
        delete_quietly(written)
        raise
