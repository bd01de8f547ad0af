"""Real test media, built on first use and shared by the whole session."""

import shutil
import tempfile
from functools import cache
from pathlib import Path

from tests import mediagen

ROOT = Path(tempfile.mkdtemp(prefix="studio-media-"))


@cache
def talking_video(seconds: float = 12.0, faces: int = 1) -> Path:
    path = ROOT / f"talking-{seconds:g}s-{faces}faces.mp4"
    mediagen.make_talking_video(path, seconds=seconds, faces=faces)
    return path


@cache
def photo(subject: str = "astronaut", fmt: str = "png") -> Path:
    path = ROOT / f"{subject}.{fmt}"
    mediagen.make_photo(path, subject=subject, fmt=fmt)
    return path


@cache
def big_photo() -> Path:
    path = ROOT / "big.png"
    mediagen.make_big_photo(path, megabytes=12)
    return path


@cache
def audio(seconds: float, fmt: str = "wav") -> Path:
    path = ROOT / f"voice-{seconds:g}s.{fmt}"
    mediagen.make_audio(path, seconds=seconds, fmt=fmt)
    return path


@cache
def png_renamed_mp4() -> Path:
    path = ROOT / "actually-a-png.mp4"
    shutil.copy(photo(), path)
    return path


def cleanup() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
