"""Media by URL and render callbacks: the API's side of `studio.netguard` and the `webhooks` app.

The address guard decides what may be fetched or called; this module only turns a fetched
file into the same kind of local upload a file_id gives, so both go through one pre-flight.
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from api.uploads import StoredUpload
from studio import netguard
from webhooks import services as webhook_services

# The guard's names for the kinds of file an upload credential is for.
GUARD_KINDS = {"video": "video", "photo": "image", "audio": "audio"}


@contextmanager
def fetched(url: str, *, kinds: tuple[str, ...], field: str) -> Iterator[StoredUpload]:
    """Download `url` (through the address guard) into a temporary file, removed afterwards."""
    limit = max(settings.API_UPLOAD_MAX_BYTES[kind] for kind in kinds)
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=settings.FILE_UPLOAD_TEMP_DIR) as directory:
        result = netguard.fetch_to_file(
            url, Path(directory), max_bytes=limit, timeout=settings.API_FETCH_TIMEOUT_SECONDS,
            allowed_kinds=[GUARD_KINDS[kind] for kind in kinds], field=field,
        )
        # The name only labels the avatar in the studio; the type comes from the bytes.
        named = Path(urlsplit(result.final_url).path).name
        name = named if Path(named).suffix.lower().lstrip(".") == result.path.suffix.lstrip(".") else result.path.name
        with StoredUpload(result.path, name=name, content_type=result.content_type) as opened:
            yield opened


def callback_checked(url: str) -> str:
    """The callback URL as it will be stored; refused (with a sentence) before anything is created."""
    return webhook_services.webhook_callback_check(url=url, field="callback_url")


def callback_register(*, render, url: str) -> None:
    webhook_services.webhook_callback_set(render=render, url=url, field="callback_url")
