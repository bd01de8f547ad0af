"""Direct uploads: issue a credential, receive or check the file, hand it over once.

S3 mode: the client POSTs the file straight to the bucket with a presigned POST whose policy
fixes the key, the content type and a size range, so the web processes never carry the bytes.
Before anything uses the object the server checks it again (HeadObject size and type, then the
bytes themselves), because a policy only says what S3 accepted, not what the file is.

Local mode: the credential's URL is our own endpoint; the body streams to a temporary file that
is abandoned the moment it passes the kind's limit, so a huge upload never fills the disk.

Either way the client code is the same: POST `fields` plus the file (named "file") to `url`.
"""

import logging
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from botocore.exceptions import ClientError
from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.utils import timezone

from api.errors import ApiError, rejected
from api.models import ApiKey, Upload
from engine import media, preflight
from engine.errors import InputRejected
from engine.speech import AUDIO_FORMATS_SENTENCE
from studio.models import Team
from studio.storage import delete_quietly

log = logging.getLogger(__name__)

# What each kind may be declared as; aliases browsers and tools send map to the engine's names.
CONTENT_TYPES: dict[str, dict[str, str]] = {
    Upload.Kind.VIDEO: {"video/mp4": "video/mp4", "video/quicktime": "video/quicktime"},
    Upload.Kind.PHOTO: {"image/jpeg": "image/jpeg", "image/png": "image/png", "image/webp": "image/webp"},
    Upload.Kind.AUDIO: {
        "audio/wav": "audio/wav", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav",
        "audio/mpeg": "audio/mpeg", "audio/mp3": "audio/mpeg",
        "audio/mp4": "audio/mp4", "audio/x-m4a": "audio/mp4", "audio/aac": "audio/aac",
        "audio/ogg": "audio/ogg", "audio/x-ms-wma": "audio/x-ms-wma",
    },
}
KIND_WORDS = {Upload.Kind.VIDEO: "a video", Upload.Kind.PHOTO: "a photo or image", Upload.Kind.AUDIO: "a voice track"}
# A multipart body carries a few hundred bytes of boundaries and headers around the file.
MULTIPART_SLACK = 64 * 1024
TOKEN_SALT = "api.upload"


def s3_mode() -> bool:
    return bool(settings.AWS_STORAGE_BUCKET_NAME)


def size_words(limit: int) -> str:
    if limit >= 1024**3:
        return f"{limit / 1024**3:g} GB"
    if limit % 1_000_000 == 0:  # the photo rule is in decimal megabytes
        return f"{limit // 1_000_000} MB"
    if limit < 1024**2:
        return f"{limit / 1000:g} KB"
    return f"{limit / 1024**2:g} MB"


def too_large(kind: str, limit: int) -> ApiError:
    return ApiError(
        413, "file_too_large",
        f"This file is larger than {size_words(limit)}, the most {KIND_WORDS[kind]} upload may be; choose a smaller file.",
        field="file",
    )


def _s3_client():
    return default_storage.connection.meta.client


# --------------------------------------------------------------------------------------
# Issuing a credential
# --------------------------------------------------------------------------------------


def upload_create(
    *, team: Team, api_key: ApiKey | None, kind: str, content_type: str, filename: str, absolute_url
) -> tuple[Upload, dict]:
    """The Upload row and the credential to send the file with: url, fields, expires_at."""
    if kind not in CONTENT_TYPES:
        raise ApiError(422, "invalid_kind", "kind must be video, photo or audio.", field="kind")
    declared = content_type.split(";")[0].strip().lower()
    if declared not in CONTENT_TYPES[kind]:
        allowed = ", ".join(sorted(set(CONTENT_TYPES[kind].values())))
        raise ApiError(
            422, "unsupported_type", f"{KIND_WORDS[kind].capitalize()} upload must be one of: {allowed}.",
            field="content_type",
        )
    canonical = CONTENT_TYPES[kind][declared]
    upload_id = uuid.uuid4()
    prefix = f"teams/{team.pk}/uploads/{upload_id}/"
    upload = Upload.objects.create(
        id=upload_id,
        team=team,
        api_key=api_key,
        kind=kind,
        content_type=declared,
        filename=Path(filename or "").name[:255],
        max_bytes=settings.API_UPLOAD_MAX_BYTES[kind],
        key=f"{prefix}upload.{media.EXTENSION_FOR_TYPE[canonical]}",
        expires_at=timezone.now() + timedelta(seconds=settings.API_UPLOAD_EXPIRES_SECONDS),
    )
    if s3_mode():
        post = _s3_client().generate_presigned_post(
            Bucket=default_storage.bucket_name,
            Key=upload.key,
            Fields={"Content-Type": declared},
            Conditions=[
                {"Content-Type": declared},
                ["content-length-range", 1, upload.max_bytes],
                ["starts-with", "$key", prefix],
            ],
            ExpiresIn=settings.API_UPLOAD_EXPIRES_SECONDS,
        )
        credential = {"url": post["url"], "fields": post["fields"]}
    else:
        token = signing.dumps(str(upload.pk), salt=TOKEN_SALT)
        credential = {"url": absolute_url(f"/api/v1/uploads/{upload.pk}/content?token={token}"), "fields": {}}
    return upload, {**credential, "expires_at": upload.expires_at, "max_bytes": upload.max_bytes}


def token_matches(upload_id, token: str) -> bool:
    try:
        return signing.loads(token, salt=TOKEN_SALT) == str(upload_id)
    except signing.BadSignature:
        return False


# --------------------------------------------------------------------------------------
# Local mode: receiving the body
# --------------------------------------------------------------------------------------


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Stream one file to a temporary file; stop reading the request at `limit` bytes.

    The check comes before each write, so the temporary file never holds more than the limit;
    stopping (rather than skipping) the upload leaves the rest of the body unread.
    """

    def __init__(self, request, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.largest_written = 0
        self.over_limit = False

    def receive_data_chunk(self, raw_data, start):
        if self.received + len(raw_data) > self.limit:
            self.over_limit = True
            raise StopUpload(connection_reset=True)
        self.received += len(raw_data)
        result = super().receive_data_chunk(raw_data, start)
        self.largest_written = max(self.largest_written, self.file.tell())
        return result


def check_kind(upload: Upload, path: Path, *, field: str = "file") -> None:
    """The bytes must be the kind of file the credential was for (the UI's sentences)."""
    if upload.kind in (Upload.Kind.VIDEO, Upload.Kind.PHOTO):
        try:
            preflight.source_kind(path, kind=upload.kind)
        except InputRejected as problem:
            error = rejected(problem)
            error.field = field
            raise error from None
        return
    sniffed = media.sniff_type(path)
    if sniffed is not None and not sniffed.startswith("audio/"):
        described = media.TYPE_DESCRIPTIONS.get(sniffed, "not audio")
        raise ApiError(
            422, "audio_format", f"This file is {described}; upload the voice track as {AUDIO_FORMATS_SENTENCE}.",
            field=field,
        )


def upload_receive(*, upload: Upload, handler: CappedUploadHandler, files) -> Upload:
    """Store the received file under the upload's key once its bytes match its kind."""
    received = next(iter(files.values()), None) if files else None
    if handler.over_limit:
        Upload.objects.filter(pk=upload.pk).delete()
        raise too_large(upload.kind, upload.max_bytes)
    if received is None:
        raise ApiError(400, "no_file", "Send the file as multipart/form-data in a part named “file”.", field="file")
    try:
        path = Path(received.temporary_file_path())
        if path.stat().st_size == 0:
            raise ApiError(422, "empty_file", "The file is empty; choose the file again.", field="file")
        check_kind(upload, path)
        stored = default_storage.save(upload.key, received)
    finally:
        received.close()
    if stored != upload.key:  # keys are unique per upload; a clash means something else wrote there
        delete_quietly([stored])
        raise ApiError(409, "already_received", "A file was already received for this upload.")
    moved = Upload.objects.filter(pk=upload.pk, status=Upload.Status.PENDING).update(
        status=Upload.Status.RECEIVED, size=received.size, filename=upload.filename or Path(received.name).name[:255]
    )
    if not moved:
        delete_quietly([stored])
        raise ApiError(409, "already_received", "A file was already received for this upload.")
    upload.refresh_from_db()
    return upload


# --------------------------------------------------------------------------------------
# Using an upload, once
# --------------------------------------------------------------------------------------


class StoredUpload(UploadedFile):
    """An upload on local disk, shaped like a Django upload so forms and services take it as is."""

    def __init__(self, path: Path, *, name: str, content_type: str):
        super().__init__(open(path, "rb"), name=name, content_type=content_type, size=path.stat().st_size)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


def upload_claim(*, team: Team, file_id, kinds: tuple[str, ...], field: str) -> Upload:
    """Take an upload for one use; refused if it is another team's, spent, expired or the wrong kind."""
    upload = Upload.objects.filter(pk=file_id, team=team).first()
    if upload is None:
        raise ApiError(404, "file_not_found", f"There is no upload with this {field} in this key's team.", field=field)
    if upload.status == Upload.Status.USED:
        raise ApiError(409, "file_already_used", f"This {field} was already used; upload the file again.", field=field)
    if upload.kind not in kinds:
        wanted = " or ".join(kinds)
        raise ApiError(
            422, "wrong_kind", f"This {field} is a {upload.kind} upload; {field} needs a {wanted}.", field=field
        )
    if not s3_mode() and upload.status != Upload.Status.RECEIVED:
        raise ApiError(
            422, "file_not_received", f"No file arrived for this {field}; upload it with its credential first.",
            field=field,
        )
    if upload.is_expired and upload.status == Upload.Status.PENDING:
        raise ApiError(410, "upload_expired", f"The credential for this {field} expired before the file arrived; ask for a new one.", field=field)
    claimed = Upload.objects.filter(pk=upload.pk, status=upload.status).update(
        status=Upload.Status.USED, used_at=timezone.now()
    )
    if not claimed:
        raise ApiError(409, "file_already_used", f"This {field} was already used; upload the file again.", field=field)
    return upload


def upload_release(upload: Upload) -> None:
    """Give an upload back after a request that failed for reasons other than the file."""
    Upload.objects.filter(pk=upload.pk, status=Upload.Status.USED).update(status=upload.status, used_at=None)


def upload_discard(upload: Upload) -> None:
    """Forget an upload whose file was refused: row and stored object."""
    Upload.objects.filter(pk=upload.pk).delete()
    delete_quietly([upload.key])


def upload_spend(upload: Upload) -> None:
    """The service copied the bytes: remove the object, keep the row so a reuse reads "already used"."""
    delete_quietly([upload.key])


def _check_s3_object(upload: Upload, field: str) -> None:
    try:
        head = _s3_client().head_object(Bucket=default_storage.bucket_name, Key=upload.key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ApiError(
                422, "file_not_received", f"No file arrived for this {field}; upload it with its credential first.",
                field=field,
            ) from None
        raise
    if head["ContentLength"] > upload.max_bytes:
        raise too_large(upload.kind, upload.max_bytes)
    stored_type = (head.get("ContentType") or "").split(";")[0].strip().lower()
    if stored_type != upload.content_type:
        raise ApiError(
            422, "type_mismatch",
            f"The file arrived as {stored_type or 'an unknown type'}, not the {upload.content_type} declared for it; upload it again.",
            field=field,
        )


@contextmanager
def upload_opened(*, team: Team, file_id, kinds: tuple[str, ...], field: str) -> Iterator[StoredUpload]:
    """Claim an upload and open it as a local file for one request.

    If the request fails because of this very file, the file is discarded (it will never
    pass); any other failure gives the upload back for another try. After success the
    caller's service has copied the bytes, so the upload's own object is removed.
    """
    upload = upload_claim(team=team, file_id=file_id, kinds=kinds, field=field)
    name = upload.filename or Path(upload.key).name
    try:
        if s3_mode():
            _check_s3_object(upload, field)
            suffix = Path(upload.key).suffix
            with tempfile.NamedTemporaryFile(suffix=suffix, dir=settings.FILE_UPLOAD_TEMP_DIR) as handle:
                _s3_client().download_fileobj(default_storage.bucket_name, upload.key, handle)
                handle.flush()
                path = Path(handle.name)
                check_kind(upload, path, field=field)
                with StoredUpload(path, name=name, content_type=upload.content_type) as opened:
                    yield opened
        else:
            path = Path(default_storage.path(upload.key))
            with StoredUpload(path, name=name, content_type=upload.content_type) as opened:
                yield opened
    except ApiError as error:
        if error.field in (field, "file") and error.code != "file_not_received":
            upload_discard(upload)
        else:
            upload_release(upload)
        raise
    except BaseException:
        upload_release(upload)
        raise
    upload_spend(upload)


class FormRefused(Exception):
    """Raised inside ``direct_uploads`` when the form is invalid: the uploads are given back,
    so the creator can correct the form and send it again without uploading again."""


@contextmanager
def direct_uploads(request, kinds: dict[str, tuple[str, ...]]):
    """S3 mode, the studio's own forms: the files the browser sent straight to the bucket
    (``<field>_file_id`` in the post), opened like uploaded files. Yields (files, problems):
    the request's files with those added, and a sentence per field whose upload is unusable.
    Raise ``FormRefused`` inside to give the uploads back."""
    from contextlib import ExitStack

    files = request.FILES.copy()
    problems: dict[str, str] = {}
    with ExitStack() as stack:
        for field, allowed in kinds.items():
            file_id = request.POST.get(f"{field}_file_id", "")
            if not file_id or field in files:
                continue
            try:
                uuid.UUID(file_id)
                files[field] = stack.enter_context(
                    upload_opened(team=request.team, file_id=file_id, kinds=allowed, field=field)
                )
            except ValueError:
                problems[field] = "The uploaded file could not be found; choose it again."
            except ApiError as error:
                problems[field] = error.message
        yield files, problems


def report_direct_problems(form, problems: dict[str, str]) -> None:
    """Show each unusable direct upload on its field (in place of "this field is required")."""
    for field, message in problems.items():
        if field in form.fields:
            form.errors[field] = form.error_class([message])
        else:
            form.add_error(None, message)
