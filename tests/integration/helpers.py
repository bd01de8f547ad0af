import shutil
import tempfile
import time
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from avatars import services as avatar_services
from avatars.models import Avatar
from tests import media_cache, mediagen


def ready_photo_avatar(*, team, user, name="Presenter") -> Avatar:
    """A prepared photo avatar; tasks run inline (eagerly) when the caller's transaction commits."""
    path = media_cache.photo("astronaut", "png")
    avatar = avatar_services.avatar_create(
        team=team,
        user=user,
        name=name,
        gender="female",
        source=SimpleUploadedFile("me.png", path.read_bytes()),
    )
    return avatar


def mp4_facts(stored) -> dict:
    """Duration, frame rate and audio loudness of a stored MP4 (local or S3), read back with PyAV."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "video.mp4"
        with stored.storage.open(stored.name, "rb") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return mediagen.mp4_facts(path)


def wait_for(predicate, *, seconds: float, what: str):
    """Poll ``predicate`` until it returns something true (returned), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")
