"""Pictures around a video: quick previews, a photo held as a video, posters, and the
faststart check that says a file plays before it has fully downloaded."""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from .colour import rgb_to_frame
from .normalise import normalise_video
from .probing import MediaInfo, local_file
from .reader import VideoReader
from .sniff import is_image_type, sniff_type
from .writer import VideoWriter, rational_fps


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


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from the image's header, without decoding its pixels; None if unreadable.

    A small file can declare an enormous picture; callers check this before decoding one.
    Pillow's own ``open`` refuses such a header outright (a decompression-bomb guard) without
    saying its size, so the format's header reader is called directly.
    """
    from PIL import Image

    local_file(path)
    Image.init()
    with open(path, "rb") as handle:
        prefix = handle.read(16)
        for name, (factory, accepts) in Image.OPEN.items():
            if accepts is None or not accepts(prefix):
                continue
            handle.seek(0)
            try:
                with factory(handle, os.fspath(path)) as img:
                    width, height = img.size
                    orientation = img.getexif().get(0x0112, 1)
            except (OSError, ValueError, SyntaxError, struct.error):
                continue
            # EXIF orientations 5–8 turn the picture a quarter: its upright width is the stored height.
            return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return None


def load_image_rgb(path: str | os.PathLike, *, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A photo as upright RGB (EXIF orientation applied, transparency flattened)."""
    from PIL import Image, ImageOps

    local_file(path)
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
