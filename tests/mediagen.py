"""Real test media, built from scikit-image's sample pictures and espeak speech.

Used by every suite (engine and Django). Each function writes to the destination path it is
given, so callers decide the caching (see ``tests/media_cache.py``). Everything is real:
H.264/AAC MP4s PyAV can decode, photos with EXIF-free pixels, speech with phonemes.

Framing: skimage's astronaut is 512×512 with her face ~20 % of the width; scaled to the
frame height she fills 11–20 % of a 4:3 or 16:9 frame, inside the 10–33 % rule.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

from engine import media

DEFAULT_TEXT = (
    "Hello, I am your presenter for today. I will show you how a talking avatar speaks, "
    "and how the words match the movement of my lips. Thank you for watching this short video."
)
GAP_SECONDS = 0.35


# --------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.LANCZOS))


def _backdrop(width: int, height: int) -> np.ndarray:
    """A soft studio-grey gradient (flat colour would make the pan invisible)."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    base = 150 + 40 * (1 - y) - 20 * x
    rgb = np.stack([base * 0.95, base * 0.98, base * 1.05], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _scene(width: int, height: int, faces: int) -> np.ndarray:
    """Backdrop with 1 or 2 astronauts, scaled to the frame height (or half-width for 2)."""
    canvas = _backdrop(width, height)
    astronaut = data.astronaut()
    side = min(height, width // faces)
    person = _resize(astronaut, side, side)
    top = height - side
    if faces == 1:
        lefts = [(width - side) // 2]
    else:
        slot = width // faces
        lefts = [i * slot + (slot - side) // 2 for i in range(faces)]
    for left in lefts:
        canvas[top : top + side, left : left + side] = person
    return canvas


def _subject_rgb(subject: str) -> np.ndarray:
    if subject == "astronaut":
        return data.astronaut()
    if subject == "coffee":
        return data.coffee()
    if subject == "two_astronauts":
        return np.concatenate([data.astronaut(), data.astronaut()], axis=1)
    raise ValueError(f"unknown subject {subject!r}")


def _save_image(rgb: np.ndarray, path: Path, fmt: str, *, quality: int | None = None, compress_level: int = 6) -> None:
    image = Image.fromarray(rgb)
    if fmt == "png":
        image.save(path, format="PNG", compress_level=compress_level)
    elif fmt in ("jpg", "jpeg"):
        image.save(path, format="JPEG", quality=quality or 92)
    elif fmt == "webp":
        image.save(path, format="WEBP", quality=quality or 90)
    else:
        raise ValueError(f"unknown image format {fmt!r}")


def make_photo(path: str | Path, *, subject: str = "astronaut", fmt: str = "png") -> Path:
    """A photo: ``astronaut`` (one frontal face, 20 % of the width), ``coffee`` (no face),
    ``two_astronauts`` (two faces side by side)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_image(_subject_rgb(subject), path, fmt)
    return path


def make_big_photo(path: str | Path, megabytes: float = 12) -> Path:
    """A real photo (the astronaut, upscaled with film grain) of at least ``megabytes`` MB
    (decimal), at most 4000 px a side; PNG unless ``path`` ends in .jpg/.jpeg."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "jpg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    target = int(megabytes * 1_000_000)
    rng = np.random.default_rng(7)
    side = int(math.sqrt(target / 3) * 1.05)
    for _ in range(6):
        side = min(side, 4000)
        base = _resize(data.astronaut(), side, side).astype(np.int16)
        grain = rng.integers(-48, 49, size=base.shape, dtype=np.int16)
        rgb = np.clip(base + grain, 0, 255).astype(np.uint8)
        _save_image(rgb, path, fmt, compress_level=1, quality=100)
        size = path.stat().st_size
        if size >= target or side == 4000:
            break
        side = int(side * math.sqrt(target / size) * 1.03)
    if path.stat().st_size < target:
        raise RuntimeError(f"could not make a {megabytes} MB photo within 4000 px")
    return path


# --------------------------------------------------------------------------------------
# Sound
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _spoken(text: str) -> tuple[np.ndarray, int]:
    from engine import speech

    spoken = speech.synthesize(text)
    return spoken.samples.astype(np.float32), int(spoken.sample_rate)


def speech_samples(seconds: float, *, text: str | None = None) -> tuple[np.ndarray, int]:
    """espeak speech of ``text`` repeated (with short pauses) to exactly ``seconds``."""
    samples, rate = _spoken(text or DEFAULT_TEXT)
    gap = np.zeros(int(GAP_SECONDS * rate), np.float32)
    need = int(round(seconds * rate))
    parts: list[np.ndarray] = []
    have = 0
    while have < need:
        parts.extend([samples, gap])
        have += len(samples) + len(gap)
    out = np.concatenate(parts)[:need].copy()
    fade = min(len(out), int(0.02 * rate))
    if fade:
        out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out, rate


_AUDIO_CONTAINERS = {
    "wav": ("wav", "pcm_s16le"),
    "mp3": ("mp3", "libmp3lame"),
    "m4a": ("ipod", "aac"),
}


def _write_audio_file(path: Path, samples: np.ndarray, rate: int, fmt: str) -> None:
    container_format, codec = _AUDIO_CONTAINERS[fmt]
    out_rate = rate if fmt == "wav" else 44100
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        step = 4096
        for start in range(0, len(samples), step):
            chunk = np.ascontiguousarray(samples[start : start + step].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def make_audio(
    path: str | Path, *, seconds: float, fmt: str = "wav", text: str | None = None, silent: bool = False
) -> Path:
    """A voice track of ``seconds``: espeak speech (or digital silence) as WAV, MP3 or M4A."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt not in _AUDIO_CONTAINERS:
        raise ValueError(f"unknown audio format {fmt!r}")
    if silent:
        rate = 22050
        samples = np.zeros(int(round(seconds * rate)), np.float32)
    else:
        samples, rate = speech_samples(seconds, text=text)
    _write_audio_file(path, samples, rate, fmt)
    return path


# --------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------


def make_talking_video(
    path: str | Path,
    *,
    seconds: float = 12.0,
    fps: float = 25,
    size: tuple[int, int] = (640, 480),
    faces: int = 1,
    text: str | None = None,
) -> Path:
    """An MP4 (H.264 + AAC) of the astronaut "presenting": a slow pan of a few pixels over
    a studio backdrop, with espeak speech filling the whole duration.

    ``faces=2`` puts two astronauts side by side (for the one-face rule).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    margin = 8
    scene = _scene(width + 2 * margin, height + 2 * margin, faces)
    audio, rate = speech_samples(seconds, text=text)
    count = max(1, int(round(seconds * fps)))
    with media.VideoWriter(path, width=width, height=height, fps=fps, audio=audio, sample_rate=rate) as writer:
        for k in range(count):
            t = k / fps
            # Slow, smooth drift (periods of 5 s and 7 s) so consecutive frames differ.
            dx = int(round(margin * 0.75 * math.sin(2 * math.pi * t / 5.0)))
            dy = int(round(margin * 0.5 * math.sin(2 * math.pi * t / 7.0)))
            frame = scene[margin + dy : margin + dy + height, margin + dx : margin + dx + width]
            writer.write(np.ascontiguousarray(frame))
    return path
