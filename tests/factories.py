"""Rows in the states the web tests need, with real stored files, made without the engine.

Web tests exercise forms, pages and permissions; they should not pay for a real preparation
(the engine-through-web path is covered in `tests/integration`).
"""

import shutil
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from avatars.models import Avatar
from renders.models import Render

FIXTURES = Path(__file__).parent / "fixtures"


def store_fixture(name: str, key: str) -> str:
    """Put a fixture file in local storage under `key`, as a worker's upload would."""
    target = Path(settings.MEDIA_ROOT) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / name, target)
    return key


def ready_avatar(*, team, user, name: str = "Presenter", kind: str = "photo", gender: str = "female") -> Avatar:
    """A ready avatar whose source, prepared media, poster and preview are tiny real files."""
    avatar = Avatar(
        team=team, created_by=user, name=name, gender=gender, kind=kind, status=Avatar.Status.READY,
        consent_at=timezone.now(), width=96, height=96, progress=100, finished_at=timezone.now(),
        preflight={"ok": True, "problems": []},
    )
    source = "clip.mp4" if kind == Avatar.Kind.VIDEO else "photo.png"
    extension = Path(source).suffix
    avatar.source.name = store_fixture(source, f"{avatar.key_prefix}source{extension}")
    avatar.media.name = store_fixture(source, f"{avatar.key_prefix}media{extension}")
    avatar.poster.name = store_fixture("poster.jpg", f"{avatar.key_prefix}poster.jpg")
    avatar.preview.name = store_fixture("clip.mp4", f"{avatar.key_prefix}preview.mp4")
    if kind == Avatar.Kind.VIDEO:
        avatar.fps, avatar.duration = 25.0, 12.0
    avatar.save(force_insert=True)
    return avatar


def finished_render(
    *, avatar: Avatar, user, title: str = "Welcome", captions: bool = False, **fields
) -> Render:
    """A render that succeeded, with a tiny real MP4 and poster (and captions) in storage."""
    render = Render(
        team=avatar.team, avatar=avatar, created_by=user, title=title, script="Hello there.", voice="en-us",
        status=Render.Status.SUCCEEDED, progress=100, duration=1.0, width=96, height=96,
        finished_at=timezone.now(), **fields,
    )
    render.video.name = store_fixture("clip.mp4", f"{render.key_prefix}video.mp4")
    render.poster.name = store_fixture("poster.jpg", f"{render.key_prefix}poster.jpg")
    if captions:
        render.captions_srt.name = store_fixture("captions.srt", f"{render.key_prefix}captions.srt")
        render.captions_vtt.name = store_fixture("captions.vtt", f"{render.key_prefix}captions.vtt")
    render.size_bytes = (FIXTURES / "clip.mp4").stat().st_size
    render.save(force_insert=True)
    return render
