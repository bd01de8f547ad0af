"""Real test media, built from scikit-image's sample pictures and espeak speech.

Used by every suite (engine and Django). Each function writes to the destination path it is
given, so callers decide the caching (see ``tests/media_cache.py``). Everything is real:
H.264/AAC MP4s PyAV can decode, photos with EXIF-free pixels, speech with phonemes.

Framing: skimage's astronaut is 512×512 with her face ~20 % of the width; scaled to the
frame height she fills 11–20 % of a 4:3 or 16:9 frame.
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


def panned(scene: np.ndarray, t: float, size: tuple[int, int], margin: int) -> np.ndarray:
    """The ``size`` (w, h) view of ``scene`` (``margin`` larger on every side) at ``t`` seconds
    of a slow, smooth drift (periods of 5 s and 7 s), so consecutive frames differ."""
    width, height = size
    dx = int(round(margin * 0.75 * math.sin(2 * math.pi * t / 5.0)))
    dy = int(round(margin * 0.5 * math.sin(2 * math.pi * t / 7.0)))
    return np.ascontiguousarray(scene[margin + dy : margin + dy + height, margin + dx : margin + dx + width])


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
            writer.write(panned(scene, k / fps, size, margin))
    return path


# --------------------------------------------------------------------------------------
# Talking video with a moving mouth (for lip sync), and two different people
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _spoken_with_phonemes(text: str):
    from engine import speech

    return speech.synthesize(text)


def speech_timeline(seconds: float, *, text: str | None = None):
    """``speech_samples`` plus its espeak phoneme timeline (the repeats shifted in time)."""
    from engine.speech import PhonemeEvent

    spoken = _spoken_with_phonemes(text or DEFAULT_TEXT)
    samples, rate = speech_samples(seconds, text=text)
    period = (len(spoken.samples) + int(GAP_SECONDS * rate)) / rate
    events: list = []
    offset = 0.0
    while offset < seconds:
        for event in spoken.phonemes:
            if offset + event.start >= seconds:
                break
            events.append(PhonemeEvent(offset + event.start, min(seconds, offset + event.end), event.phoneme))
        if offset + spoken.duration < seconds:
            events.append(PhonemeEvent(offset + spoken.duration, min(seconds, offset + period), "_"))
        offset += period
    return samples, rate, events


@functools.lru_cache(maxsize=1)
def _astronaut_mouth() -> dict:
    """The astronaut's lip landmarks (FaceMesh, 512×512 picture) for animating her mouth."""
    from engine.face import LIP_INNER, face_mesh, inter_ocular

    points = face_mesh(data.astronaut(), static=True)[0]
    return {"points": points, "iod": inter_ocular(points), "inner": points[LIP_INNER]}


def animate_mouth(rgb: np.ndarray, *, jaw: float, width: float = 0.5, closure: float = 0.0,
                  teeth: float = 0.5) -> np.ndarray:
    """The 512×512 astronaut with her jaw opened (``jaw`` 0–1) or her lips pressed together
    (``closure`` 1): the lower lip and chin move down (or up) with a smooth displacement
    field, and the gap between the lips is painted as a dark mouth with a band of teeth."""
    import cv2

    mouth = _astronaut_mouth()
    iod, inner = mouth["iod"], mouth["inner"]
    upper = inner[:11]  # corner → along the top → other corner
    lower = np.concatenate([inner[10:], inner[:1]])  # corner → along the bottom → first corner
    cx = float(inner[:, 0].mean())
    half = float(inner[:, 0].max() - inner[:, 0].min()) / 2
    base_gap = float(np.linalg.norm(mouth["points"][14] - mouth["points"][13]))
    gap = 0.0 if closure >= 0.5 else jaw * 0.5 * iod
    shift = gap - base_gap  # how far the lower lip moves down (negative: up, closing)
    # Work on the lower face only: the rest of the picture stays as it was.
    x0, x1 = int(cx - 2.2 * half), int(cx + 2.2 * half)
    y0 = int(inner[:, 1].min() - 0.3 * iod)
    chin = float(mouth["points"][152, 1])
    y1 = int(min(rgb.shape[0], chin + 0.6 * iod))
    roi = rgb[y0:y1, x0:x1]
    h, w = roi.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    upper_local, lower_local = upper - (x0, y0), lower - (x0, y0)
    cx_local, chin_local = cx - x0, chin - y0
    order = np.argsort(upper_local[:, 0])
    top_line = np.interp(xs, upper_local[order, 0], upper_local[order, 1])
    wx = np.exp(-(((xs - cx_local) / (1.1 * half)) ** 2))
    below = np.clip((ys - top_line) / 2.0, 0.0, 1.0)
    fade = np.clip(1.0 - (ys - chin_local) / (0.45 * iod), 0.0, 1.0)
    dy = shift * wx * below * fade
    dx = (width - 0.5) * 0.25 * half * np.tanh((xs - cx_local) / half) * np.exp(
        -(((ys - top_line) / (0.35 * iod)) ** 2))
    moved_roi = cv2.remap(roi, (xs - dx).astype(np.float32), (ys - dy).astype(np.float32),
                          interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if gap > 1.0:
        moved = lower_local.copy()
        moved[:, 1] += shift * np.exp(-(((moved[:, 0] - cx_local) / (1.1 * half)) ** 2))
        polygon = np.round(np.concatenate([upper_local, moved[::-1]])).astype(np.int32)
        cavity = np.zeros((h, w), np.uint8)
        cv2.fillPoly(cavity, [polygon], 255)
        # a dark mouth (darkest in the middle), upper teeth, lower teeth when wide open, a tongue
        bottom_line = np.interp(xs, np.sort(moved[:, 0]), moved[np.argsort(moved[:, 0]), 1])
        depth = np.clip(np.minimum(ys - top_line, bottom_line - ys) / max(1.0, 0.5 * gap), 0.0, 1.0)
        inside = np.empty((h, w, 3), np.float32)
        inside[:] = (95, 35, 40)
        inside = inside * (1.0 - 0.65 * depth[..., None])
        tongue = ((xs - cx_local) / (0.55 * half)) ** 2 + ((ys - bottom_line) / max(1.0, 0.35 * gap)) ** 2 < 1.0
        inside[tongue] = (165, 70, 75)
        upper_teeth = (ys - top_line) < (0.05 + 0.05 * teeth) * iod
        lower_teeth = (bottom_line - ys) < 0.035 * iod * (jaw > 0.3)
        shade = np.clip(1.0 - np.abs(xs - cx_local) / (1.3 * half), 0.55, 1.0)[..., None]
        teeth_rgb = np.array([232, 226, 214], np.float32) * shade
        inside = np.where((upper_teeth | lower_teeth)[..., None], teeth_rgb, inside)
        alpha = cv2.GaussianBlur(cavity.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None]
        moved_roi = (moved_roi.astype(np.float32) * (1.0 - alpha) + inside * alpha).astype(np.uint8)
    out = rgb.copy()
    out[y0:y1, x0:x1] = moved_roi
    return out


def make_speaking_video(
    path: str | Path,
    *,
    seconds: float = 12.0,
    fps: float = 25,
    size: tuple[int, int] = (640, 480),
    text: str | None = None,
) -> Path:
    """Like ``make_talking_video`` but her mouth moves with the speech (espeak's timeline
    through ``visemes.trajectory_from_phonemes``): closed for every p/b/m and in pauses,
    open on the vowels. A library built from it has open and closed mouths."""
    import cv2

    from engine import visemes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    margin = 8
    audio, rate, events = speech_timeline(seconds, text=text)
    trajectory = visemes.trajectory_from_phonemes(events, audio, rate, fps, alphabet="espeak")
    backdrop = _backdrop(width + 2 * margin, height + 2 * margin)
    side = height + 2 * margin
    left = (width + 2 * margin - side) // 2
    astronaut = data.astronaut()
    count = max(1, int(round(seconds * fps)))
    with media.VideoWriter(path, width=width, height=height, fps=fps, audio=audio, sample_rate=rate) as writer:
        for k in range(count):
            i = min(k, trajectory.frame_count - 1)
            person = animate_mouth(
                astronaut, jaw=float(trajectory.jaw[i]), width=float(trajectory.width[i]),
                closure=float(trajectory.closure[i]), teeth=float(trajectory.teeth[i]),
            )
            canvas = backdrop.copy()
            canvas[:, left : left + side] = cv2.resize(person, (side, side), interpolation=cv2.INTER_AREA)
            writer.write(panned(canvas, k / fps, (width, height), margin))
    return path


def make_two_people_video(
    path: str | Path, *, seconds: float = 4.0, fps: float = 25, size: tuple[int, int] = (640, 360)
) -> Path:
    """Two different faces side by side: the astronaut on the left and her mirror image
    (another "person" to the trackers: light falls from the other side, the hair parts the
    other way) on the right. The left face starts larger and ends smaller than the right
    one, so "the largest face" changes hands halfway through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    backdrop = _backdrop(width, height)
    people = [data.astronaut(), np.ascontiguousarray(data.astronaut()[:, ::-1])]
    count = max(1, int(round(seconds * fps)))
    audio, rate = speech_samples(seconds)
    with media.VideoWriter(path, width=width, height=height, fps=fps, audio=audio, sample_rate=rate) as writer:
        for k in range(count):
            progress = k / max(1, count - 1)
            canvas = backdrop.copy()
            sides = [int(height * (0.95 - 0.25 * progress)), int(height * (0.70 + 0.25 * progress))]
            for slot, (person, side) in enumerate(zip(people, sides)):
                side = min(side, width // 2)
                x = slot * (width // 2) + (width // 2 - side) // 2
                canvas[height - side :, x : x + side] = _resize(person, side, side)
            writer.write(canvas)
    return path


# -- frame-numbered footage (loop-order tests) ------------------------------------------

CODE_STRIPE = 64


def make_coded_video(path: Path, *, frames: int, fps: float, bits: int) -> Path:
    """Footage whose frame k shows k in binary as black/white stripes (survives H.264)."""
    from engine import media

    width = bits * CODE_STRIPE
    with media.VideoWriter(path, width=width, height=240, fps=fps) as writer:
        for index in range(frames):
            frame = np.zeros((240, width, 3), np.uint8)
            for bit in range(bits):
                if index >> bit & 1:
                    frame[:, bit * CODE_STRIPE : (bit + 1) * CODE_STRIPE] = 255
            writer.write(frame)
    return path


def read_code(frame: np.ndarray) -> int:
    """The frame number make_coded_video wrote into a (decoded) frame."""
    bits = frame.shape[1] // CODE_STRIPE
    return sum(
        1 << bit
        for bit in range(bits)
        if frame[40:200, bit * CODE_STRIPE + 8 : bit * CODE_STRIPE + 56].mean() > 128
    )


def mp4_facts(path: Path) -> dict:
    """Frame rate, frame count, video length and audio RMS of an MP4, read back with PyAV."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps = float(video.average_rate)
        frames = sum(1 for _ in container.decode(video))
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(container.streams.audio[0])]
    samples = np.concatenate(chunks).astype(np.float32)
    return {"fps": fps, "frames": frames, "video_seconds": frames / fps, "audio_rms": float(np.sqrt(np.mean(samples**2)))}


def make_declared_png(path: str | Path, *, width: int, height: int) -> Path:
    """A few-hundred-byte PNG whose header declares ``width`` × ``height`` pixels.

    Its pixel data is a single compressed row, so only a decoder that trusts the header (and
    allocates the whole picture) pays for the size.
    """
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = zlib.compress(b"\0" * (width + 1), 9)
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path
