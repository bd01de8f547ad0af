"""What a file really is, from its first bytes.

Creators rename files and browsers guess; only magic bytes are trusted, so a PNG renamed
``.mp4`` is ``image/png`` and the rest of the engine never decodes a type it didn't expect.
"""

from __future__ import annotations

import os
from pathlib import PurePath

# One extension per type: stored files are named from what their bytes are, never from
# the name they were uploaded under.
EXTENSION_FOR_TYPE: dict[str, str] = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/x-msvideo": "avi",
    "video/webm": "webm",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/heic": "heic",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/x-ms-wma": "wma",
    "application/pdf": "pdf",
}

# Subtitles are written by the studio, never sniffed, but are served from the same storage.
TYPE_FOR_EXTENSION: dict[str, str] = {extension: mime for mime, extension in EXTENSION_FOR_TYPE.items()} | {
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}

# Creator-facing names, used in sentences such as "This file is a PNG image, …".
TYPE_DESCRIPTIONS: dict[str, str] = {
    "video/mp4": "an MP4 video",
    "video/quicktime": "a MOV video",
    "video/x-msvideo": "an AVI video",
    "video/webm": "a WebM/MKV video",
    "image/jpeg": "a JPEG image",
    "image/png": "a PNG image",
    "image/webp": "a WebP image",
    "image/gif": "a GIF image",
    "image/bmp": "a BMP image",
    "image/heic": "a HEIC image",
    "audio/wav": "a WAV audio file",
    "audio/mpeg": "an MP3 audio file",
    "audio/mp4": "an M4A audio file",
    "audio/aac": "an AAC audio file",
    "audio/ogg": "an OGG audio file",
    "audio/flac": "a FLAC audio file",
    "audio/x-ms-wma": "a WMA audio file",
    "application/pdf": "a PDF document",
}

# The images Pillow decodes for the engine; HEIC is recognised only to word its refusal.
DECODED_IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"}

_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A "}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")


def content_type_for_name(name: str | os.PathLike) -> str:
    """The Content-Type to serve a stored file with, from the extension it was stored under."""
    extension = PurePath(name).suffix.lower().lstrip(".")
    return TYPE_FOR_EXTENSION.get(extension, "application/octet-stream")


def _sniff_bytes(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] in (b"RIFF", b"RF64") and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return "image/webp"
        if kind == b"WAVE":
            return "audio/wav"
        if kind == b"AVI ":
            return "video/x-msvideo"
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        compatible = {head[i : i + 4] for i in range(16, min(len(head), 64) - 3, 4)}
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in _MP4_AUDIO_BRANDS:
            return "audio/mp4"
        if brand in _HEIF_BRANDS or (brand not in (b"isom", b"mp41", b"mp42") and compatible & _HEIF_BRANDS):
            return "image/heic"
        return "video/mp4"
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return "video/quicktime"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(_ASF_GUID):
        return "audio/x-ms-wma"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") and len(head) >= 10:
        # An ID3v2 tag can front MP3 or ADTS AAC: look at what follows it.
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        after = head[10 + size : 10 + size + 4]
        if len(after) >= 2 and after[0] == 0xFF and (after[1] & 0xF6) == 0xF0:
            return "audio/aac"
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF:
        if (head[1] & 0xF6) == 0xF0:  # 12-bit sync, layer 00: ADTS
            return "audio/aac"
        if (head[1] & 0xE0) == 0xE0 and (head[1] >> 1) & 0x3 != 0:  # MPEG audio layer I–III
            return "audio/mpeg"
    return None


def sniff_type(path: str | os.PathLike) -> str | None:
    """The real MIME type from the file's magic bytes, or None when unrecognised."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    return _sniff_bytes(head)


def is_image_type(mime: str | None) -> bool:
    return mime in DECODED_IMAGE_TYPES or mime == "image/heic"
