"""Describing a media file without trusting it.

A hostile file can make a demuxer spin or allocate without end, so ``probe`` runs in a
child process with CPU and address-space limits and a wall-clock timeout; FFmpeg only ever
opens local files through its ``file`` protocol, with the one demuxer the sniffed type
allows.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from ..errors import InputRejected
from .sniff import DECODED_IMAGE_TYPES, TYPE_DESCRIPTIONS, sniff_type

# A file that claims to be an MP4 can't smuggle in an HLS playlist or a concat script that
# opens other files: FFmpeg may only use the demuxer its sniffed type names.
_DEMUXERS: dict[str, str] = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "audio/mp4": "mov",
    "video/x-msvideo": "avi",
    "video/webm": "matroska",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/x-ms-wma": "asf",
}


@dataclass
class MediaInfo:
    mime: str
    size_bytes: int
    duration: float  # seconds; 0.0 for a photo
    width: int  # as displayed (rotation applied)
    height: int
    fps: float  # 0.0 for a photo or audio
    video_codec: str | None
    audio_codec: str | None
    has_video: bool  # a moving-picture stream; False for a photo
    has_audio: bool
    frame_count: int  # 1 for a photo, 0 for audio
    rotation: int = 0  # degrees counter-clockwise the decoder's frames must turn to stand upright
    sample_rate: int = 0
    channels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MediaInfo":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


_URLISH = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*[:,]")


def local_file(path: str | os.PathLike) -> Path:
    """Refuse anything that isn't a plain local file (URLs, FFmpeg protocols, devices)."""
    text = os.fspath(path)
    if "\x00" in text or "://" in text or (_URLISH.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text)):
        raise InputRejected("Only uploaded files can be checked, not links.", field="source", code="not_a_file")
    p = Path(text).resolve()
    if not p.is_file():
        raise InputRejected("The uploaded file is missing; upload it again.", field="source", code="missing")
    return p


def open_input(path: str | os.PathLike, *, mime: str | None = None) -> av.container.InputContainer:
    """Open a local media file with FFmpeg restricted to the ``file`` protocol and the one
    demuxer of its sniffed (or given) type."""
    p = local_file(path)
    mime = mime or sniff_type(p)
    demuxer = _DEMUXERS.get(mime or "")
    if demuxer is None:  # unknown bytes never reach FFmpeg's probing (HLS, concat, …)
        raise unreadable_error(mime)
    options = {"protocol_whitelist": "file", "format_whitelist": demuxer}
    return av.open("file:" + str(p), mode="r", container_options=options, timeout=10.0)


def unreadable_error(mime: str | None) -> InputRejected:
    what = TYPE_DESCRIPTIONS.get(mime or "", "this file")
    return InputRejected(
        f"We couldn't read {what}; it may be damaged or cut short, so export it again and re-upload.",
        field="source",
        code="unreadable",
    )


def _frame_rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _probe_image(p: Path, mime: str) -> MediaInfo:
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = 200_000_000  # header-only beyond this; preflight rejects by size
    try:
        with Image.open(p) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            # Decode only what we would later decode anyway; huge images are rejected by size.
            if img.size[0] * img.size[1] <= 4096 * 4096:
                if img.format == "JPEG":
                    img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
                ImageOps.exif_transpose(img).load()
            codec = (img.format or "").lower() or None
    except Exception as exc:  # PIL raises many unrelated types for broken files
        raise unreadable_error(mime) from exc
    return MediaInfo(
        mime=mime,
        size_bytes=p.stat().st_size,
        duration=0.0,
        width=width,
        height=height,
        fps=0.0,
        video_codec=codec,
        audio_codec=None,
        has_video=False,
        has_audio=False,
        frame_count=1,
    )


def _probe_av(p: Path, mime: str) -> MediaInfo:
    try:
        container = open_input(p, mime=mime)
    except InputRejected:
        raise
    except Exception as exc:
        raise unreadable_error(mime) from exc
    with container:
        vstream = container.streams.video[0] if container.streams.video else None
        astream = container.streams.audio[0] if container.streams.audio else None
        # Cover art in M4A/MP3 shows up as a one-frame "video" stream.
        if vstream is not None and vstream.disposition & av.stream.Disposition.attached_pic:
            vstream = None
        duration = 0.0
        if container.duration:
            duration = container.duration / av.time_base
        width = height = rotation = frame_count = 0
        fps = 0.0
        video_codec = audio_codec = None
        sample_rate = channels = 0
        if vstream is not None:
            video_codec = vstream.codec_context.name
            width, height = vstream.codec_context.width, vstream.codec_context.height
            fps = _frame_rate(vstream)
            if not duration and vstream.duration:
                duration = float(vstream.duration * vstream.time_base)
            try:
                first = next(container.decode(vstream))
            except Exception as exc:  # StopIteration, FFmpeg errors: no decodable picture
                raise unreadable_error(mime) from exc
            width, height = first.width, first.height
            rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
            if rotation in (90, 270):
                width, height = height, width
            frame_count = int(vstream.frames or 0) or int(round(duration * fps))
        if astream is not None:
            audio_codec = astream.codec_context.name
            sample_rate = int(astream.codec_context.sample_rate or 0)
            channels = int(astream.codec_context.channels or 0) if hasattr(astream.codec_context, "channels") else 0
            if not duration and astream.duration:
                duration = float(astream.duration * astream.time_base)
            if vstream is None:
                try:
                    container.seek(0)
                    next(container.decode(astream))
                except Exception as exc:
                    raise unreadable_error(mime) from exc
        if vstream is None and astream is None:
            raise unreadable_error(mime)
    return MediaInfo(
        mime=mime,
        size_bytes=p.stat().st_size,
        duration=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        video_codec=video_codec,
        audio_codec=audio_codec,
        has_video=vstream is not None,
        has_audio=astream is not None,
        frame_count=frame_count,
        rotation=rotation,
        sample_rate=sample_rate,
        channels=channels,
    )


def probe_in_process(path: str | os.PathLike) -> MediaInfo:
    """Probe without the child-process guard: only for files the engine wrote itself."""
    p = local_file(path)
    mime = sniff_type(p)
    if mime is None:
        raise InputRejected(
            "We couldn't recognise this file's type; upload an MP4 or MOV video, a JPEG, PNG or WebP photo, "
            "or a WAV, MP3, M4A, AAC, OGG or WMA audio file.",
            field="source",
            code="unknown_type",
        )
    if mime in DECODED_IMAGE_TYPES:
        return _probe_image(p, mime)
    if mime in _DEMUXERS:
        return _probe_av(p, mime)
    # HEIC, PDF: recognised but nothing the engine decodes; the caller words the refusal.
    return MediaInfo(mime, p.stat().st_size, 0.0, 0, 0, 0.0, None, None, False, False, 0)


def probe(path: str | os.PathLike, *, timeout: float = 20.0) -> MediaInfo:
    """Describe a local media file, in a child process killed after ``timeout`` seconds.

    The web process never hangs on a hostile file. Raises ``InputRejected`` with a sentence
    for the creator.
    """
    p = local_file(path)
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding ``engine``
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine.media", "probe", str(p), str(int(math.ceil(timeout)))],
            capture_output=True,
            timeout=timeout,
            env=env,
            cwd=package_root,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputRejected(
            "This file took too long to read; export it again as a standard MP4 and re-upload.",
            field="source",
            code="probe_timeout",
        ) from exc
    lines = [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.startswith("{")]
    if not lines:
        raise unreadable_error(sniff_type(p))
    payload = json.loads(lines[-1])
    if "error" in payload:
        if payload.get("kind") == "rejected":
            raise InputRejected(payload["error"], field=payload.get("field", "source"), code=payload.get("code", ""))
        raise unreadable_error(sniff_type(p))
    return MediaInfo.from_dict(payload["info"])


def probe_main(path: str, cpu_seconds: int) -> int:
    """The child side of ``probe``: limit itself, probe, print one JSON line."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds + 1, cpu_seconds + 2))
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    except (ImportError, ValueError, OSError):  # not fatal: the parent's timeout still holds
        pass
    try:
        info = probe_in_process(path)
    except InputRejected as exc:
        print(json.dumps({"error": str(exc), "kind": "rejected", "field": exc.field, "code": exc.code}))
        return 0
    except Exception as exc:  # report, don't traceback: the parent words the refusal
        print(json.dumps({"error": repr(exc), "kind": "crash"}))
        return 1
    print(json.dumps({"info": info.to_dict()}))
    return 0
