"""Media I/O for the engine: sniffing, probing, decoding and encoding (PyAV).

Everything here works on local paths only. Inputs from creators are hostile until proven
otherwise, so:

* ``sniff_type`` trusts magic bytes, never the file name;
* ``probe`` runs in a child process with a wall-clock limit and resource limits, opens the
  file through FFmpeg's ``file`` protocol only, and only with the demuxer that matches the
  sniffed type;
* decoders and encoders stream frames; nothing holds a whole video in memory.

Colour: every encode is tagged BT.709 / limited range and converted to it explicitly, so
browsers show the same colours as the RGB frames the engine worked on. Untagged sources are
read as BT.601 below 720 lines and BT.709 from 720 lines up (what players assume).
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import subprocess
import sys
from collections import OrderedDict
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import av
import numpy as np
from av.video.reformatter import Interpolation

from .errors import EngineError, InputRejected

ProgressFn = Callable[[str, float], None]

# --------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------

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

# The demuxers FFmpeg may use for each sniffed type: a file that claims to be an MP4 can't
# smuggle in an HLS playlist or a concat script that opens other files.
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

_IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"}

_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A "}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")


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
    """The real MIME type from the file's magic bytes, or None when unrecognised.

    The name is ignored on purpose: a PNG renamed ``.mp4`` is ``image/png``.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    return _sniff_bytes(head)


def is_image_type(mime: str | None) -> bool:
    return mime in _IMAGE_TYPES or mime == "image/heic"


def is_video_type(mime: str | None) -> bool:
    return bool(mime) and mime.startswith("video/")


def is_audio_type(mime: str | None) -> bool:
    return bool(mime) and mime.startswith("audio/")


# --------------------------------------------------------------------------------------
# Probe
# --------------------------------------------------------------------------------------


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


def _local_file(path: str | os.PathLike) -> Path:
    """Refuse anything that isn't a plain local file (URLs, FFmpeg protocols, devices)."""
    text = os.fspath(path)
    if "\x00" in text or "://" in text or (_URLISH.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text)):
        raise InputRejected("Only uploaded files can be checked, not links.", field="source", code="not_a_file")
    p = Path(text).resolve()
    if not p.is_file():
        raise InputRejected("The uploaded file is missing; upload it again.", field="source", code="missing")
    return p


def open_input(path: str | os.PathLike, *, mime: str | None = None) -> av.container.InputContainer:
    """Open a local media file with FFmpeg restricted to the ``file`` protocol.

    Only the demuxer matching the sniffed (or given) type may run, so content can't pull in
    other demuxers (playlists, concat scripts) that open further files or URLs; bytes of an
    unknown type are refused before FFmpeg sees them.
    """
    p = _local_file(path)
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
    p = _local_file(path)
    mime = sniff_type(p)
    if mime is None:
        raise InputRejected(
            "We couldn't recognise this file's type; upload an MP4 or MOV video, a JPEG, PNG or WebP photo, "
            "or a WAV, MP3, M4A, AAC, OGG or WMA audio file.",
            field="source",
            code="unknown_type",
        )
    if mime in _IMAGE_TYPES:
        return _probe_image(p, mime)
    if mime in _DEMUXERS:
        return _probe_av(p, mime)
    # HEIC, PDF: recognised but nothing the engine decodes; the caller words the refusal.
    return MediaInfo(mime, p.stat().st_size, 0.0, 0, 0, 0.0, None, None, False, False, 0)


def probe(path: str | os.PathLike, *, timeout: float = 20.0) -> MediaInfo:
    """Describe a local media file, in a child process killed after ``timeout`` seconds.

    A hostile file can make a demuxer spin or allocate without end; the child has a CPU and
    address-space limit and the parent only waits ``timeout`` seconds, so the web process
    never hangs. Raises ``InputRejected`` with a sentence for the creator.
    """
    p = _local_file(path)
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
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


def _probe_main(path: str, cpu_seconds: int) -> int:
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


# --------------------------------------------------------------------------------------
# Colour and frame helpers
# --------------------------------------------------------------------------------------

_BT709 = 1
_UNSPECIFIED = 2
_SMPTE170M = 6
_RANGE_MPEG = 1
_RANGE_JPEG = 2


# swscale's default YUV→RGB path is fast but darkens every channel by ~1 level; accurate
# rounding with full chroma interpolation is unbiased (~4 ms per 720p frame).
_TO_RGB = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_TO_YUV = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT


def _source_colorspace(frame: av.VideoFrame) -> int:
    cs = int(frame.colorspace or _UNSPECIFIED)
    if cs in (0, _UNSPECIFIED, 3):  # RGB/unspecified/reserved: guess like players do
        return _BT709 if frame.height >= 720 else _SMPTE170M
    return cs


def _source_range(frame: av.VideoFrame) -> int:
    if frame.format.name.startswith("yuvj"):
        return _RANGE_JPEG
    return int(frame.color_range or 0) or _RANGE_MPEG


def frame_to_rgb(frame: av.VideoFrame, *, rotation: int = 0) -> np.ndarray:
    """Decoded frame → upright RGB uint8 array (rotation in degrees counter-clockwise)."""
    if frame.format.name in ("rgb24",):
        rgb = frame.to_ndarray()
    else:
        rgb = frame.reformat(
            format="rgb24",
            src_colorspace=_source_colorspace(frame),
            src_color_range=_source_range(frame),
            interpolation=_TO_RGB,
        ).to_ndarray()
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def rgb_to_frame(rgb: np.ndarray) -> av.VideoFrame:
    """RGB uint8 → BT.709 limited-range yuv420p frame, as the encoders expect."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., :3]), format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace=_BT709, dst_color_range=_RANGE_MPEG, interpolation=_TO_YUV)


def _to_encoder_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    if (
        frame.format.name == "yuv420p"
        and frame.width == width
        and frame.height == height
        and int(frame.colorspace or 0) == _BT709
        and int(frame.color_range or 0) == _RANGE_MPEG
    ):
        return frame
    return frame.reformat(
        width=width,
        height=height,
        format="yuv420p",
        src_colorspace=_source_colorspace(frame),
        src_color_range=_source_range(frame),
        dst_colorspace=_BT709,
        dst_color_range=_RANGE_MPEG,
        interpolation="AREA",
    )


_NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001))


def rational_fps(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction; 29.97 → 30000/1001, 25.0 → 25."""
    if isinstance(fps, Fraction) and fps.denominator in (1, 1001):
        return fps
    value = float(fps)
    if value <= 0:
        raise EngineError("The frame rate must be positive.")
    for ntsc in _NTSC_RATES:
        if abs(value - float(ntsc)) < 0.002:
            return ntsc
    if abs(value - round(value)) < 0.01:
        return Fraction(round(value))
    return Fraction(value).limit_denominator(1001)


def even_size(width: int, height: int, *, max_long_side: int | None = None) -> tuple[int, int]:
    """Output size: scaled to fit ``max_long_side`` (never up), both sides even (yuv420p)."""
    scale = 1.0
    if max_long_side and max(width, height) > max_long_side:
        scale = max_long_side / max(width, height)
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------

# Cache budget for random/reverse access. yuv420p frames are 1.5 bytes per pixel, so this
# holds ~60 frames of 1080p, ~140 of 720p, ~15 of 4K.
DEFAULT_CACHE_BYTES = 192 * 1024 * 1024


class VideoReader:
    """Frame-indexed access to a video's first video stream, streamed.

    ``frames(indices)`` serves any index sequence — forward runs decode sequentially; a
    backward jump decodes a *chunk* ending at the wanted frame (seek to the keyframe before
    the chunk, decode forward) and serves the following backward run from that chunk. Memory
    is bounded by ``cache_bytes`` (the chunk size in frames is ``cache_bytes // frame_bytes``,
    at least 4). Indices assume constant frame rate, which ``normalise_video`` guarantees.
    """

    def __init__(self, path: str | os.PathLike, *, cache_bytes: int = DEFAULT_CACHE_BYTES, threads: bool = True):
        self.path = Path(path)
        self._container = open_input(path, mime=sniff_type(path))
        if not self._container.streams.video:
            self._container.close()
            raise unreadable_error(sniff_type(path))
        self._stream = self._container.streams.video[0]
        if threads:
            self._stream.thread_type = "AUTO"
        average = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        base = self._stream.base_rate
        # r_frame_rate is exact for constant-rate files; average_rate can be off by rounding.
        self.rate = base if base and abs(float(base) - float(average)) / float(average) < 0.01 else average
        self.fps = float(self.rate)
        self.time_base = self._stream.time_base
        duration = 0.0
        if self._stream.duration:
            duration = float(self._stream.duration * self.time_base)
        elif self._container.duration:
            duration = self._container.duration / av.time_base
        self.frame_count = int(self._stream.frames or 0) or max(1, int(round(duration * self.fps)))
        self.duration = self.frame_count / self.fps
        self.coded_width = self._stream.codec_context.width
        self.coded_height = self._stream.codec_context.height
        self.rotation = 0
        self._pts0: int | None = None
        self._decoder: Iterator[av.VideoFrame] | None = None
        self._next_index = 0
        self._cache: OrderedDict[int, av.VideoFrame] = OrderedDict()
        frame_bytes = max(1, self.coded_width * self.coded_height * 3 // 2)
        self.chunk_frames = max(4, cache_bytes // frame_bytes)
        try:
            self._keyframes = sorted(e.timestamp for e in self._stream.index_entries if e.is_keyframe)
        except Exception:  # demuxers without an index (or older PyAV): always seek
            self._keyframes = []
        self._restart(0)
        first = self._peek_first()
        self.rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
        self.width, self.height = (first.width, first.height)
        if self.rotation in (90, 270):
            self.width, self.height = self.height, self.width

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._cache.clear()
        self._decoder = None
        self._container.close()

    # -- low level ---------------------------------------------------------------------------
    def _restart(self, index: int) -> None:
        """Position the decoder at the keyframe at or before ``index``."""
        if index <= 0 or self._pts0 is None:
            self._container.seek(0, stream=self._stream, backward=True)
            self._next_index = 0 if index <= 0 else -1
        else:
            target = self._pts0 + int(round(index / self.fps / self.time_base))
            self._container.seek(target, stream=self._stream, backward=True)
            self._next_index = -1  # unknown until the first frame arrives
        self._decoder = self._container.decode(self._stream)
        self._pending: av.VideoFrame | None = None

    def _peek_first(self) -> av.VideoFrame:
        frame = next(self._decoder)
        self._pts0 = frame.pts if frame.pts is not None else 0
        self._pending = frame
        return frame

    def _index_of(self, frame: av.VideoFrame) -> int:
        if frame.pts is None or self._pts0 is None:
            return self._next_index
        return int(round(float((frame.pts - self._pts0) * self.time_base) * self.fps))

    def _decode_next(self) -> tuple[int, av.VideoFrame] | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            try:
                frame = next(self._decoder)
            except StopIteration:
                return None
        index = self._index_of(frame)
        if index < 0:
            index = max(self._next_index, 0)
        self._next_index = index + 1
        return index, frame

    # -- public ----------------------------------------------------------------------------
    def frames(self, indices: Iterable[int]) -> Iterator[av.VideoFrame]:
        """Decoded frames (as stored: rotation not applied) for any sequence of indices."""
        last: av.VideoFrame | None = None
        for wanted in indices:
            wanted = min(max(int(wanted), 0), self.frame_count - 1)
            frame = self._cache.get(wanted)
            if frame is None:
                frame = self._fetch(wanted)
            if frame is None:  # past the real end (frame count overestimated): hold the last
                frame = last
            if frame is None:
                raise unreadable_error(sniff_type(self.path))
            last = frame
            yield frame

    def _keyframe_before(self, index: int) -> int | None:
        """Index of the last keyframe at or before ``index`` (None when the file has no index)."""
        if not self._keyframes or self._pts0 is None:
            return None
        target = self._pts0 + index / self.fps / float(self.time_base)
        at = bisect.bisect_right(self._keyframes, target + 0.5 / self.fps / float(self.time_base)) - 1
        if at < 0:
            return 0
        return int(round(float((self._keyframes[at] - self._pts0) * self.time_base) * self.fps))

    def _fetch(self, wanted: int) -> av.VideoFrame | None:
        ahead = wanted - self._next_index
        jump = self._next_index < 0 or ahead < 0 or ahead > self.chunk_frames
        if jump and ahead > 0 and self._next_index >= 0:
            # Forward beyond the cache: seeking only pays if a keyframe lies past where the
            # decoder already is (files with sparse keyframes would otherwise restart far back).
            keyframe = self._keyframe_before(wanted)
            jump = keyframe is None or keyframe > self._next_index
        if jump:
            # Backward (or far) jump: load the chunk that ends at ``wanted`` so the reverse run
            # that usually follows is served from memory.
            lower: int | None = max(0, wanted - self.chunk_frames + 1)
            self._cache.clear()
            self._restart(lower)
        else:
            lower = None
        found: av.VideoFrame | None = None
        while True:
            item = self._decode_next()
            if item is None:
                break
            index, frame = item
            if lower is not None and index < lower:
                continue
            self._cache[index] = frame
            while len(self._cache) > self.chunk_frames:
                self._cache.popitem(last=False)
            if index >= wanted:
                # A missing source frame (damaged or variable-rate file): show the one before.
                found = self._cache.get(wanted)
                if found is None:
                    earlier = [i for i in self._cache if i < wanted]
                    found = self._cache[max(earlier)] if earlier else frame
                break
        if found is None and self._cache:
            found = self._cache.get(wanted)
            if found is None:
                found = next(reversed(self._cache.values()))
        return found

    def frame_at(self, index: int) -> av.VideoFrame:
        """One decoded frame (rotation not applied), by keyframe seek when that is cheaper."""
        index = min(max(int(index), 0), self.frame_count - 1)
        frame = self._cache.get(index)
        if frame is None:
            frame = self._fetch(index)
        if frame is None:
            raise unreadable_error(sniff_type(self.path))
        return frame

    def iter_sequential(self, *, start_index: int = 0) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) from ``start_index`` to the end, decoding each frame once."""
        self._cache.clear()
        self._restart(start_index)
        while True:
            item = self._decode_next()
            if item is None:
                return
            if item[0] >= start_index:
                yield item

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return frame_to_rgb(frame, rotation=self.rotation)


def iter_video_frames(path: str | os.PathLike, *, start: float = 0.0) -> Iterator[np.ndarray]:
    """Upright RGB uint8 frames from ``start`` seconds on, streamed with threaded decoding."""
    with VideoReader(path) as reader:
        for _, frame in reader.iter_sequential(start_index=int(round(start * reader.fps))):
            yield reader.rgb(frame)


def iter_video_frames_at(path: str | os.PathLike, indices: Iterable[int], **kwargs) -> Iterator[np.ndarray]:
    """Upright RGB frames for any index sequence (reverse runs included), memory-bounded."""
    with VideoReader(path, **kwargs) as reader:
        for frame in reader.frames(indices):
            yield reader.rgb(frame)


def read_frames_at(path: str | os.PathLike, times: Iterable[float]) -> list[np.ndarray]:
    """One upright RGB frame per time (seconds), each reached by a keyframe seek."""
    out: list[np.ndarray] = []
    with VideoReader(path, cache_bytes=0, threads=False) as reader:
        for t in times:
            out.append(reader.rgb(reader.frame_at(int(round(t * reader.fps)))))
    return out


def sample_times(duration: float, count: int) -> list[float]:
    """``count`` times spread over the clip, avoiding the first and last 5 %."""
    if duration <= 0 or count <= 0:
        return [0.0]
    lo, hi = duration * 0.05, duration * 0.95
    if count == 1:
        return [duration / 2]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------

# x264 "superfast" leaves room on 2 cores for the per-frame work of later stages; crf 20 is
# visually clean for faces. Both are module constants so `make bench` can compare presets.
DEFAULT_PRESET = "superfast"
DEFAULT_CRF = 20
_AAC_RATES = (48000, 44100)


class VideoWriter:
    """MP4 writer: H.264 yuv420p (BT.709, constant frame rate) + AAC, ``+faststart``.

    Use as a context manager. Audio either comes whole (``audio=``, float32 -1..1, mono
    ``(n,)`` or ``(n, channels)``) and is interleaved with the video as frames arrive, or
    streamed with ``write_audio`` (give ``sample_rate`` up front). If the block raises, the
    partial file is deleted.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        fps: float | Fraction,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        keyframe_seconds: float = 2.0,
    ):
        if width % 2 or height % 2:
            raise EngineError(f"Video size {width}×{height} must be even for yuv420p.")
        self.path = Path(path)
        self.width, self.height = width, height
        self.rate = rational_fps(fps)
        self.frames_written = 0
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w", format="mp4", container_options={"movflags": "+faststart"})
        try:
            vs = self._container.add_stream("libx264", rate=self.rate)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            cc = vs.codec_context
            cc.time_base = 1 / self.rate
            cc.gop_size = max(1, int(round(float(self.rate) * keyframe_seconds)))
            cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
            cc.color_range = _RANGE_MPEG
            vs.options = {"preset": preset, "crf": str(crf)}
            self._video = vs
            self._audio = None
            self._audio_data: np.ndarray | None = None
            self._audio_pos = 0
            self._audio_encoded = 0  # samples handed to the encoder, at the input rate
            if audio is not None or sample_rate:
                if not sample_rate:
                    raise EngineError("An audio track needs its sample rate.")
                if audio is not None:
                    audio = np.asarray(audio, dtype=np.float32)
                    if audio.ndim == 1:
                        audio = audio[:, None]
                    channels = audio.shape[1]
                channels = channels or 1
                self._channels = min(2, channels)
                self._in_rate = int(sample_rate)
                out_rate = self._in_rate if self._in_rate in _AAC_RATES else 48000
                layout = "mono" if self._channels == 1 else "stereo"
                self._audio = self._container.add_stream("aac", rate=out_rate, layout=layout)
                self._audio.bit_rate = 96000 if self._channels == 1 else 160000
                self._audio_data = audio
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- video -------------------------------------------------------------------------------
    def write(self, frame: np.ndarray | av.VideoFrame) -> None:
        """Append one frame: RGB uint8 (h, w, 3) or a decoded ``av.VideoFrame``."""
        if isinstance(frame, np.ndarray):
            if frame.shape[0] != self.height or frame.shape[1] != self.width:
                raise EngineError(f"Frame is {frame.shape[1]}×{frame.shape[0]}, writer expects {self.width}×{self.height}.")
            out = rgb_to_frame(frame)
        else:
            out = _to_encoder_frame(frame, self.width, self.height)
        out.pts = self.frames_written
        out.time_base = self._video.codec_context.time_base
        for packet in self._video.encode(out):
            self._container.mux(packet)
        self.frames_written += 1
        if self._audio_data is not None:
            # Keep audio ~0.1 s ahead of the video so the muxer interleaves the two finely.
            upto = int(round((self.frames_written / float(self.rate) + 0.1) * self._in_rate))
            self._push_audio_until(upto)

    # -- audio -------------------------------------------------------------------------------
    def _push_audio_until(self, upto: int) -> None:
        data = self._audio_data
        upto = min(upto, len(data))
        if upto > self._audio_pos:
            self._encode_audio(data[self._audio_pos : upto])
            self._audio_pos = upto

    def write_audio(self, samples: np.ndarray) -> None:
        """Append streamed audio (float32, ``(n,)`` or ``(n, channels)``) at ``sample_rate``."""
        if self._audio is None:
            raise EngineError("This writer has no audio track.")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[:, None]
        self._encode_audio(samples)

    def _encode_audio(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        if samples.shape[1] != self._channels:
            samples = samples.mean(axis=1, keepdims=True) if self._channels == 1 else np.repeat(samples[:, :1], 2, 1)
        samples = np.clip(samples, -1.0, 1.0)
        packed = np.ascontiguousarray(samples.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout="mono" if self._channels == 1 else "stereo")
        frame.sample_rate = self._in_rate
        # Timestamps on every frame: without them the encoder's own resampler and frame
        # queue number the last packets by guesswork, and one can repeat a timestamp (the
        # muxer then refuses it and the whole file is lost).
        frame.pts = self._audio_encoded
        frame.time_base = Fraction(1, self._in_rate)
        self._audio_encoded += len(samples)
        for packet in self._audio.encode(frame):
            self._container.mux(packet)

    # -- finish ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._audio_data is not None:
                self._push_audio_until(len(self._audio_data))
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                for packet in self._audio.encode(None):
                    self._container.mux(packet)
            self._container.close()
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop writing and delete the partial file."""
        self._closed = True
        try:
            self._container.close()
        except Exception:  # already broken; removing the file is what matters
            pass
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Normalise, preview, poster
# --------------------------------------------------------------------------------------


def _standard_rate(rate: Fraction | None) -> Fraction:
    """Snap a measured (possibly variable) rate to a constant one the encoder can use."""
    if not rate:
        return Fraction(25)
    value = float(rate)
    standard = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                Fraction(50), Fraction(60000, 1001), Fraction(60))
    nearest = min(standard, key=lambda std: abs(value - float(std)))
    # Phones record variable frame rate around a nominal one; 3 % covers their jitter.
    if abs(value - float(nearest)) / float(nearest) < 0.03:
        return nearest
    return Fraction(max(1, round(value)))


def _audio_to_array(frame: av.AudioFrame) -> np.ndarray:
    """Decoded audio frame → float32 (n, channels)."""
    data = frame.to_ndarray()
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        data = data.astype(np.float32) / 2147483648.0
    elif data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    else:
        data = data.astype(np.float32)
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return data.T  # (channels, n) → (n, channels)
    return data.reshape(-1, channels)


def report_progress(progress: ProgressFn | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, min(1.0, max(0.0, fraction)))


class ProgressThrottle:
    """Call a progress function at most every ``interval`` seconds (plus 0 and 1)."""

    def __init__(self, progress: ProgressFn | None, stage: str, interval: float = 0.5):
        import time

        self._time = time.monotonic
        self.progress, self.stage, self.interval = progress, stage, interval
        self._last = -1e9

    def __call__(self, fraction: float, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = self._time()
        if force or now - self._last >= self.interval:
            self._last = now
            report_progress(self.progress, self.stage, fraction)


def normalise_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    progress: ProgressFn | None = None,
    *,
    max_long_side: int | None = None,
    max_seconds: float | None = None,
    frame_filter: Callable[[np.ndarray], np.ndarray] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    stage: str = "normalise",
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    on_frame: Callable[[int, av.VideoFrame], None] | None = None,
) -> MediaInfo:
    """Re-encode to H.264 yuv420p BT.709, constant frame rate, even size, audio as AAC.

    A file that already is all that (an MP4/MOV straight from an encoder like ours, upright,
    keyframes at most ``MAX_COPY_KEYFRAME_SECONDS`` apart for the renderer's backward loops)
    is copied packet for packet instead: no quality lost and no encoder time spent.

    Rotation metadata is applied to the pixels (phones record sideways), frames are dropped
    or repeated onto a constant grid (phones record variable frame rate), and audio is
    aligned to the first video frame. ``frame_filter`` (RGB → RGB at the output size, e.g.
    background replacement) forces the RGB path; otherwise frames stay YUV end to end.
    ``progress(stage, fraction)`` is throttled to ~2 calls/s. ``on_frame(index, frame)``
    sees each output frame exactly as it is encoded (yuv420p BT.709 at the output size), so
    per-frame analysis can ride along without decoding the output again. Returns the output's info.
    """
    from .errors import Cancelled

    mime = sniff_type(src)
    if frame_filter is None and _already_normal(src, mime, max_long_side=max_long_side, max_seconds=max_seconds):
        delivered = [0]

        def counted(index: int, frame: av.VideoFrame) -> None:
            on_frame(index, frame)
            delivered[0] = index + 1

        try:
            return _copy_normal(src, dst, progress, stage=stage, should_cancel=should_cancel,
                                on_frame=counted if on_frame is not None else None)
        except av.error.InvalidDataError:
            # A damaged packet after all: re-encode (which repairs it), handing on only the
            # frames the copy had not reached, so nothing downstream sees a frame twice.
            if on_frame is not None:
                seen, handed = delivered[0], on_frame

                def on_frame(index: int, frame: av.VideoFrame) -> None:
                    if index >= seen:
                        handed(index, frame)
    container = open_input(src, mime=mime)
    ticker = ProgressThrottle(progress, stage)
    ticker(0.0, force=True)
    writer: VideoWriter | None = None
    try:
        if not container.streams.video:
            raise InputRejected(
                "This file has no picture, only sound; upload a video of yourself.", field="source", code="no_video"
            )
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        astream = container.streams.audio[0] if container.streams.audio else None
        rate = _standard_rate(vstream.average_rate or vstream.guessed_rate)
        step = 1.0 / float(rate)
        total = float(vstream.duration * vstream.time_base) if vstream.duration else 0.0
        total = total or (container.duration / av.time_base if container.duration else 0.0)
        if max_seconds:
            total = min(total, max_seconds) if total else max_seconds
        aligner = _AudioAligner(astream, limit_seconds=max_seconds)
        streams = [vstream] + ([astream] if astream is not None else [])

        rotation = 0
        t0 = 0.0
        prev: av.VideoFrame | None = None
        prev_t = 0.0
        out_index = 0
        finished = False

        def emit(frame: av.VideoFrame) -> None:
            if not rotation and frame_filter is None:
                if on_frame is None:
                    writer.write(frame)  # YUV end to end; the writer scales if needed
                    return
                out = _to_encoder_frame(frame, writer.width, writer.height)
            else:
                if rotation:
                    rgb = frame_to_rgb(frame, rotation=rotation)
                    if (rgb.shape[1], rgb.shape[0]) != (writer.width, writer.height):
                        rgb = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                            width=writer.width, height=writer.height, interpolation="AREA"
                        ).to_ndarray()
                else:
                    rgb = frame_to_rgb(_to_encoder_frame(frame, writer.width, writer.height))
                out = rgb_to_frame(frame_filter(rgb) if frame_filter is not None else rgb)
            if on_frame is not None:
                on_frame(writer.frames_written, out)
            writer.write(out)

        for packet in container.demux(*streams):
            if finished:
                break
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                continue  # one damaged packet: keep going, the neighbours carry the picture
            for frame in decoded:
                if packet.stream.type == "audio":
                    aligner.add(frame, writer)
                    continue
                if frame.time is None:
                    continue
                if writer is None:
                    t0 = frame.time
                    rotation = int(round((frame.rotation or 0) / 90.0)) * 90 % 360
                    w, h = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
                    ow, oh = even_size(w, h, max_long_side=max_long_side)
                    writer = VideoWriter(
                        dst, width=ow, height=oh, fps=rate, preset=preset, crf=crf,
                        sample_rate=aligner.sample_rate, channels=aligner.channels,
                    )
                    aligner.start(writer, t0)
                t = frame.time - t0
                if max_seconds and t >= max_seconds - 1e-6:
                    finished = True
                    break
                # Constant frame rate: each output slot shows the source frame nearest to it.
                if prev is not None:
                    boundary = (prev_t + t) / 2.0
                    while out_index * step < boundary:
                        emit(prev)
                        out_index += 1
                prev, prev_t = frame, t
                if should_cancel is not None and should_cancel():
                    raise Cancelled("Preparation was cancelled.")
                if total:
                    ticker(t / total)
        if writer is None or prev is None:
            raise unreadable_error(mime)
        end = prev_t + step
        if max_seconds:
            end = min(end, max_seconds)
        while out_index * step < end - 1e-6 or out_index == 0:
            emit(prev)
            out_index += 1
        aligner.finish(writer, out_index * step)
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        container.close()
    ticker(1.0, force=True)
    return probe_in_process(dst)


MAX_COPY_KEYFRAME_SECONDS = 2.0


def _already_normal(src, mime: str | None, *, max_long_side: int | None, max_seconds: float | None) -> bool:
    """True when ``normalise_video`` would only re-encode a file into what it already is."""
    if mime not in ("video/mp4", "video/quicktime"):
        return False
    try:
        container = open_input(src, mime=mime)
    except InputRejected:
        return False
    try:
        with container:
            return _normal_streams(container, max_long_side=max_long_side, max_seconds=max_seconds)
    except av.error.FFmpegError:  # a damaged file: the re-encode repairs what it can
        return False


def _normal_streams(container, *, max_long_side: int | None, max_seconds: float | None) -> bool:
    if len(container.streams.video) != 1 or len(container.streams.audio) > 1:
        return False
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    cc = video.codec_context
    if cc.name != "h264" or cc.format is None or cc.format.name != "yuv420p":
        return False
    if audio is not None and audio.codec_context.name != "aac":
        return False
    if (cc.width, cc.height) != even_size(cc.width, cc.height, max_long_side=max_long_side):
        return False
    rate = video.average_rate or video.guessed_rate
    if not rate or _standard_rate(rate) != rate:
        return False
    if audio is not None and video.start_time is not None and audio.start_time is not None:
        # normalised files start their sound with the first picture
        offset = float(video.start_time * video.time_base) - float(audio.start_time * audio.time_base)
        if abs(offset) > 0.5 / float(rate):
            return False
    first = next(container.decode(video), None)  # the cheap checks before reading every packet
    if first is None or (first.rotation or 0) % 360:
        return False
    if _source_colorspace(first) != _BT709 or _source_range(first) != _RANGE_MPEG:
        return False
    container.seek(0)
    tick = float(1 / (rate * video.time_base))  # one frame in the stream's time base
    pts: list[int] = []
    keyframes: list[int] = []
    for packet in container.demux(video):
        if packet.pts is None:
            if packet.size:  # a picture without a time: not a file to trust as it is
                return False
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            keyframes.append(packet.pts)
    if len(pts) < 2 or not keyframes:
        return False
    pts.sort()
    if min(keyframes) != pts[0]:  # the first pictures would not decode
        return False
    steps = np.diff(np.asarray(pts, np.int64))
    if np.abs(steps - tick).max() > 1.0:  # a dropped or repeated frame: variable rate
        return False
    if max_seconds and len(pts) / float(rate) > max_seconds + 1e-6:
        return False
    gaps = np.diff(np.asarray(sorted(set(keyframes) | {pts[-1]}), np.int64))
    return not (gaps.size and gaps.max() / tick > MAX_COPY_KEYFRAME_SECONDS * float(rate) + 0.5)


def _copy_normal(src, dst, progress: ProgressFn | None, *, stage: str, should_cancel, on_frame) -> MediaInfo:
    """Copy an already-normal file's packets into a fresh MP4 (faststart); decode its video
    only when ``on_frame`` wants the pictures."""
    from .errors import Cancelled

    ticker = ProgressThrottle(progress, stage)
    ticker(0.0, force=True)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    container = open_input(src)
    output = None
    try:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        streams = [video] + list(container.streams.audio[:1])
        total = float(video.duration * video.time_base) if video.duration else 0.0
        output = av.open(str(dst), mode="w", format="mp4", container_options={"movflags": "+faststart"})
        copies = {stream.index: output.add_stream_from_template(stream) for stream in streams}
        index = 0
        for packet in container.demux(*streams):
            if packet.dts is None:
                continue  # the demuxer's end-of-stream marker
            is_video = packet.stream.index == video.index
            pictures = packet.decode() if is_video and on_frame is not None else ()
            packet.stream = copies[packet.stream.index]
            output.mux(packet)
            for frame in pictures:
                on_frame(index, frame)
                index += 1
            if is_video:
                if should_cancel is not None and should_cancel():
                    raise Cancelled("Preparation was cancelled.")
                if total and packet.pts is not None:
                    ticker(float(packet.pts * video.time_base) / total)
        if on_frame is not None:
            for frame in video.codec_context.decode(None):  # frames the decoder still holds
                on_frame(index, frame)
                index += 1
        output.close()
        output = None
    except BaseException:
        if output is not None:
            output.close()
        dst.unlink(missing_ok=True)
        raise
    finally:
        container.close()
    ticker(1.0, force=True)
    return probe_in_process(dst)


class _AudioAligner:
    """Feeds decoded audio to a writer so output sample 0 lines up with the first video frame."""

    def __init__(self, stream, *, limit_seconds: float | None):
        self.sample_rate = int(stream.codec_context.sample_rate) if stream is not None else None
        self.channels = min(2, len(stream.codec_context.layout.channels)) if stream is not None else None
        self.limit = int(limit_seconds * self.sample_rate) if (limit_seconds and self.sample_rate) else None
        self.t0: float | None = None
        self.written = 0
        self.next_time: float | None = None
        self.pending: list[tuple[float, np.ndarray]] = []

    def add(self, frame: av.AudioFrame, writer: VideoWriter | None) -> None:
        at = frame.time if frame.time is not None else self.next_time
        if at is None:
            at = 0.0
        samples = _audio_to_array(frame)
        self.next_time = at + len(samples) / frame.sample_rate
        if writer is None:
            self.pending.append((at, samples))
        else:
            self._write(writer, at, samples)

    def start(self, writer: VideoWriter, t0: float) -> None:
        self.t0 = t0
        for at, samples in self.pending:
            self._write(writer, at, samples)
        self.pending.clear()

    def finish(self, writer: VideoWriter, video_seconds: float) -> None:
        if self.sample_rate is None:
            return
        # Silence up to the video's end if the track stops early, so players don't cut short.
        end = int(round(video_seconds * self.sample_rate))
        if self.limit is not None:
            end = min(end, self.limit)
        if end > self.written:
            writer.write_audio(np.zeros((end - self.written, self.channels), np.float32))
            self.written = end

    def _write(self, writer: VideoWriter, at: float, samples: np.ndarray) -> None:
        start = int(round((at - (self.t0 or 0.0)) * self.sample_rate))
        if start > self.written + self.sample_rate // 100:  # a real gap, not rounding: silence
            writer.write_audio(np.zeros((start - self.written, samples.shape[1]), np.float32))
            self.written = start
        skip = max(0, self.written - start) if start < self.written - self.sample_rate // 100 else 0
        samples = samples[skip:]
        if self.limit is not None:
            samples = samples[: max(0, self.limit - self.written)]
        if len(samples):
            writer.write_audio(samples)
            self.written += len(samples)


def write_preview(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    seconds: float = 3.0,
    *,
    max_long_side: int = 1280,
    frame_filter: Callable[[np.ndarray], np.ndarray] | None = None,
) -> MediaInfo:
    """A short MP4 of the first ``seconds`` of a video (downscaled for a fast first look)."""
    return normalise_video(
        src, dst, None, max_long_side=max_long_side, max_seconds=seconds, frame_filter=frame_filter, stage="preview"
    )


def write_still_video(
    rgb: np.ndarray,
    dst: str | os.PathLike,
    *,
    seconds: float,
    fps: float | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 48000,
) -> None:
    """A still picture held for ``seconds`` with a sound track (silence when ``audio`` is None)."""
    rate = rational_fps(fps)
    count = max(1, int(round(seconds * float(rate))))
    if audio is None:
        audio = np.zeros(int(round(count / float(rate) * sample_rate)), np.float32)
    frame = rgb_to_frame(rgb)
    with VideoWriter(dst, width=rgb.shape[1], height=rgb.shape[0], fps=rate, audio=audio, sample_rate=sample_rate) as w:
        for _ in range(count):
            w.write(frame)


def load_image_rgb(path: str | os.PathLike, *, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A photo as upright RGB (EXIF orientation applied, transparency flattened)."""
    from PIL import Image, ImageOps

    _local_file(path)
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            flat = Image.new("RGB", img.size, background)
            flat.paste(img, mask=img.split()[-1])
            img = flat
        return np.asarray(img.convert("RGB"))


def write_poster(frame_or_path: np.ndarray | str | os.PathLike, dst_jpg: str | os.PathLike, *, at: float = 0.5) -> Path:
    """A JPEG poster from an RGB frame, a photo, or a video (frame at ``at`` seconds)."""
    from PIL import Image

    if isinstance(frame_or_path, np.ndarray):
        rgb = frame_or_path
    else:
        mime = sniff_type(frame_or_path)
        if is_image_type(mime):
            rgb = load_image_rgb(frame_or_path)
        else:
            with VideoReader(frame_or_path, cache_bytes=0, threads=False) as reader:
                rgb = reader.rgb(reader.frame_at(int(at * reader.fps)))
    dst = Path(dst_jpg)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    Image.fromarray(np.ascontiguousarray(rgb[..., :3])).save(tmp, format="JPEG", quality=88, optimize=True)
    os.replace(tmp, dst)
    return dst


def moov_before_mdat(path: str | os.PathLike) -> bool:
    """True when an MP4's index comes before its data (plays before it has fully downloaded)."""
    import struct

    order: list[bytes] = []
    with open(path, "rb") as fh:
        while True:
            header = fh.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            elif size == 0:
                order.append(kind)
                break
            order.append(kind)
            fh.seek(size - 8, os.SEEK_CUR)
    return b"moov" in order and b"mdat" in order and order.index(b"moov") < order.index(b"mdat")


if __name__ == "__main__":  # pragma: no cover - exercised through probe()
    if len(sys.argv) >= 3 and sys.argv[1] == "probe":
        sys.exit(_probe_main(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20))
    print("usage: python -m engine.media probe PATH [SECONDS]", file=sys.stderr)
    sys.exit(2)
