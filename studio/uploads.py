import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Stream every upload to a temporary file and stop reading one that is too large.

    Files always land on disk (never in memory) so the engine can sniff and probe them by
    path; the oversize flag lets the form say what happened instead of a bare 400.
    """

    def new_file(self, *args, **kwargs):
        self.received = 0
        return super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.AVATAR_MAX_UPLOAD_BYTES:
            self.request.oversize_upload = self.field_name
            raise SkipFile()
        return super().receive_data_chunk(raw_data, start)


def oversize_message() -> str:
    """What a creator reads when an upload was stopped at the studio's configured limit."""
    limit = settings.AVATAR_MAX_UPLOAD_BYTES
    gigabytes = limit / 1024**3
    shown = f"{gigabytes:g} GB" if gigabytes >= 1 else f"{limit / 1024**2:g} MB"
    return f"This file is larger than {shown}, the most this studio accepts in one upload; choose a smaller file."


def report_oversize(form, field: str | None) -> None:
    """Replace the "choose a file" error of a field whose upload was stopped by the size limit."""
    if field:
        form.errors.pop(field, None)
        form.add_error(field, oversize_message())


@contextmanager
def local_path(upload: UploadedFile) -> Iterator[Path]:
    """A path to the upload's bytes on disk (the engine sniffs and probes by path)."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    suffix = Path(upload.name or "").suffix[:10]
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        upload.seek(0)
        yield Path(handle.name)
