"""Moving files between storage (local MEDIA_ROOT or S3) and a worker's scratch directory.

Web and workers share nothing but the database and storage, so a worker always copies its
inputs down and its outputs up, even when storage happens to be a local folder.
"""

import logging
import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".wma": "audio/x-ms-wma",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
}


def content_type_for(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def download(field: FieldFile, directory: Path) -> Path:
    target = directory / Path(field.name).name
    with field.storage.open(field.name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1024 * 1024)
    return target


def upload(path: Path, key: str) -> str:
    """Store a local file under exactly `key` (keys are generated, so never clash)."""
    with open(path, "rb") as handle:
        wrapped = File(handle, name=Path(key).name)
        wrapped.content_type = content_type_for(key)
        return default_storage.save(key, wrapped)


def delete_quietly(names: list[str]) -> None:
    """Remove stored files after their rows are gone; a missing file is not an error."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # storage outages must not resurrect a deleted row
            log.exception("could not delete stored file %s", name)
