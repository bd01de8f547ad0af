"""The local engine: avatar preparation and the v0 render.

v0 renders the avatar's footage (or still photo) timed to the speech, with the speech as
the sound track. There is **no mouth motion yet**: lips move only as they did in the
original footage. Mouth synthesis arrives with the visemes / video_avatar / photo_avatar
issues and plugs into ``_frames_for_video`` / ``_frames_for_photo``.

Frames stream decoder → encoder: a video avatar's frames stay in YUV unless a background
or rotation forces RGB, and only a bounded chunk is cached for reverse playback (see
``media.VideoReader``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import media
from .compose import Background, BackgroundCompositor
from .errors import Cancelled, EngineError, InputRejected

ProgressFn = Callable[[str, float], None]  # (stage, fraction 0..1 of that stage)
CancelFn = Callable[[], bool]

LOOP_MODES = ("reverse", "forward")
PHOTO_FPS = 25
MAX_PREPARED_LONG_SIDE = 1920  # renders run on 2 CPU cores: 4K sources are prepared at 1080p
PREVIEW_SECONDS = 3.0
PREVIEW_LONG_SIDE = 1280
CANCEL_CHECK_SECONDS = 0.25


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


class _CancelCheck:
    """Ask ``should_cancel`` between frames, but at most every 0.25 s: it may hit a database."""

    def __init__(self, should_cancel: CancelFn | None, message: str):
        self._fn = should_cancel
        self._message = message
        self._last = -math.inf

    def __call__(self, *, force: bool = False) -> None:
        if self._fn is None:
            return
        now = time.monotonic()
        if force or now - self._last >= CANCEL_CHECK_SECONDS:
            self._last = now
            if self._fn():
                raise Cancelled(self._message)

    def as_fn(self) -> CancelFn:
        def check() -> bool:
            try:
                self()
            except Cancelled:
                return True
            return False

        return check


def _lazy_filter(background: Background) -> Callable[[np.ndarray], np.ndarray] | None:
    """A frame filter that builds its compositor for the first frame's size."""
    if background is None:
        return None
    state: dict[str, BackgroundCompositor] = {}

    def apply(rgb: np.ndarray) -> np.ndarray:
        comp = state.get("c")
        if comp is None:
            comp = state["c"] = BackgroundCompositor(background, (rgb.shape[1], rgb.shape[0]))
        return comp.apply(rgb)

    return apply


# --------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------


@dataclass
class PreparedAvatar:
    kind: str
    media_path: Path  # normalised MP4 (video) or PNG (photo)
    poster_path: Path
    preview_path: Path
    width: int
    height: int
    fps: float
    duration: float  # seconds of footage; 0.0 for a photo
    frame_count: int  # 1 for a photo


def prepare_avatar(
    *,
    kind: str,
    source: Path,
    workdir: Path,
    background: Background = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    on_preview: Callable[[Path], None] | None = None,
) -> PreparedAvatar:
    """Turn a checked upload into what renders use, plus a poster and a 3-second preview.

    Stages, in order: ``preview`` (made first, straight from the source, so the creator sees
    something within seconds; ``on_preview(path)`` fires as soon as it exists), then
    ``normalising``, then ``poster``. A background (colour or image) is baked into the
    prepared media. On cancel or failure nothing is left in ``workdir``.
    """
    if kind not in ("video", "photo"):
        raise EngineError(f"Unknown avatar kind {kind!r}.")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cancel = _CancelCheck(should_cancel, "Preparation was cancelled.")
    outputs: list[Path] = []
    try:
        if kind == "video":
            return _prepare_video(Path(source), workdir, background, progress, cancel, on_preview, outputs)
        return _prepare_photo(Path(source), workdir, background, progress, cancel, on_preview, outputs)
    except BaseException:
        for path in outputs:
            path.unlink(missing_ok=True)
        raise


def _prepare_video(source, workdir, background, progress, cancel, on_preview, outputs) -> PreparedAvatar:
    preview = workdir / "preview.mp4"
    media_path = workdir / "media.mp4"
    poster = workdir / "poster.jpg"
    outputs.extend([preview, media_path, poster])

    media.report_progress(progress, "preview", 0.0)
    media.write_preview(
        source, preview, PREVIEW_SECONDS, max_long_side=PREVIEW_LONG_SIDE, frame_filter=_lazy_filter(background)
    )
    media.report_progress(progress, "preview", 1.0)
    if on_preview is not None:
        on_preview(preview)
    cancel(force=True)

    info = media.normalise_video(
        source,
        media_path,
        progress,
        max_long_side=MAX_PREPARED_LONG_SIDE,
        frame_filter=_lazy_filter(background),
        should_cancel=cancel.as_fn(),
        stage="normalising",
    )
    cancel(force=True)

    media.report_progress(progress, "poster", 0.0)
    media.write_poster(media_path, poster, at=min(0.5, info.duration / 2))
    media.report_progress(progress, "poster", 1.0)
    return PreparedAvatar(
        kind="video",
        media_path=media_path,
        poster_path=poster,
        preview_path=preview,
        width=info.width,
        height=info.height,
        fps=info.fps,
        duration=info.duration,
        frame_count=info.frame_count,
    )


def _fit_photo(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """Downscale to ``long_side`` and make both sides even (yuv420p needs it)."""
    import cv2

    h, w = rgb.shape[:2]
    tw, th = media.even_size(w, h, max_long_side=long_side)
    if (tw, th) == (w, h):
        return rgb
    if tw >= w - 1 and th >= h - 1:  # only an odd edge: crop a pixel rather than resample
        return np.ascontiguousarray(rgb[:th, :tw])
    return cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)


def _prepare_photo(source, workdir, background, progress, cancel, on_preview, outputs) -> PreparedAvatar:
    from PIL import Image

    preview = workdir / "preview.mp4"
    media_path = workdir / "media.png"
    poster = workdir / "poster.jpg"
    outputs.extend([preview, media_path, poster])

    media.report_progress(progress, "preview", 0.0)
    rgb = _fit_photo(media.load_image_rgb(source), MAX_PREPARED_LONG_SIDE)
    if background is not None:
        rgb = BackgroundCompositor(background, (rgb.shape[1], rgb.shape[0])).apply(rgb)
    media.write_still_video(_fit_photo(rgb, PREVIEW_LONG_SIDE), preview, seconds=PREVIEW_SECONDS, fps=PHOTO_FPS)
    media.report_progress(progress, "preview", 1.0)
    if on_preview is not None:
        on_preview(preview)
    cancel(force=True)

    media.report_progress(progress, "normalising", 0.0)
    tmp = media_path.with_name(media_path.name + ".part")
    Image.fromarray(rgb).save(tmp, format="PNG", compress_level=3)
    os.replace(tmp, media_path)
    media.report_progress(progress, "normalising", 1.0)

    media.report_progress(progress, "poster", 0.0)
    media.write_poster(rgb, poster)
    media.report_progress(progress, "poster", 1.0)
    return PreparedAvatar(
        kind="photo",
        media_path=media_path,
        poster_path=poster,
        preview_path=preview,
        width=rgb.shape[1],
        height=rgb.shape[0],
        fps=float(PHOTO_FPS),
        duration=0.0,
        frame_count=1,
    )


# --------------------------------------------------------------------------------------
# Render
# --------------------------------------------------------------------------------------


@dataclass
class RenderRequest:
    avatar_kind: str  # "video" | "photo"
    avatar_media: Path  # PreparedAvatar.media_path
    output: Path
    poster: Path
    text: str | None = None
    voice: str = "en-us"
    speed: float = 1.0
    volume: int = 0
    audio: Path | None = None
    loop_mode: str = "reverse"  # "reverse" | "forward"
    background: Background = None
    fps: float | None = None  # video: the avatar's own rate; photo: 25


@dataclass
class RenderResult:
    video_path: Path
    poster_path: Path
    duration: float
    width: int
    height: int
    fps: float
    frame_count: int


def loop_index(position: int, n_source: int, loop_mode: str) -> int:
    """Source frame shown at timeline ``position`` once the footage runs out.

    reverse: 0,1,…,N-1,N-2,…,1,0,1,… (a ping-pong with no repeated frame at the turns, so
    there is no jump); forward: 0,…,N-1,0,…,N-1 (a cut at each seam).
    """
    if n_source <= 1:
        return 0
    if loop_mode == "forward":
        return position % n_source
    period = 2 * n_source - 2
    phase = position % period
    return phase if phase < n_source else period - phase


def frame_index_sequence(n_source: int, n_out: int, loop_mode: str) -> Iterator[int]:
    """The source frame index for each of ``n_out`` output frames (same frame rate)."""
    if loop_mode not in LOOP_MODES:
        raise InputRejected(
            f"Unknown loop mode {loop_mode!r}; choose reverse or forward.", field="loop_mode", code="loop_mode"
        )
    if n_source <= 0:
        raise EngineError("The avatar footage has no frames.")
    for position in range(max(0, n_out)):
        yield loop_index(position, n_source, loop_mode)


def _resampled_sequence(n_source: int, n_out: int, loop_mode: str, src_fps: float, out_fps: float) -> Iterator[int]:
    """Like ``frame_index_sequence`` but at a different output rate (nearest source frame)."""
    if abs(src_fps - out_fps) < 1e-6:
        yield from frame_index_sequence(n_source, n_out, loop_mode)
        return
    if loop_mode not in LOOP_MODES:
        yield from frame_index_sequence(n_source, n_out, loop_mode)  # raises
        return
    for k in range(n_out):
        yield loop_index(int(math.floor(k * src_fps / out_fps + 1e-9)), n_source, loop_mode)


def _speech_track(req: RenderRequest, progress: ProgressFn | None) -> tuple[np.ndarray, int]:
    from . import speech

    media.report_progress(progress, "speech", 0.0)
    if req.audio is not None:
        speech.check_audio_driver(req.audio)
        rate = 48000
        samples = speech.load_audio(req.audio, sample_rate=rate)
    elif req.text is not None and req.text.strip():
        spoken = speech.synthesize(req.text, voice=req.voice, speed=req.speed, volume=req.volume)
        samples, rate = spoken.samples, spoken.sample_rate
    else:
        raise InputRejected("Type a script or upload a voice track.", field="script", code="no_driver")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise InputRejected("The speech came out empty; check the script or the voice track.", field="script",
                            code="empty_speech")
    media.report_progress(progress, "speech", 1.0)
    return samples, int(rate)


def render(req: RenderRequest, *, progress: ProgressFn | None = None, should_cancel: CancelFn | None = None) -> RenderResult:
    """Render the avatar speaking ``req.text`` (TTS) or ``req.audio``; v0: no mouth motion.

    Stages: ``speech``, ``frames`` (decode + compose + encode, streamed), ``finalize``.
    The output lasts as long as the speech (within one frame). On cancel (checked between
    frames) or failure the partial output is deleted and ``Cancelled``/the error propagates.
    """
    if req.avatar_kind not in ("video", "photo"):
        raise EngineError(f"Unknown avatar kind {req.avatar_kind!r}.")
    if req.loop_mode not in LOOP_MODES:
        raise InputRejected(
            f"Unknown loop mode {req.loop_mode!r}; choose reverse or forward.", field="loop_mode", code="loop_mode"
        )
    cancel = _CancelCheck(should_cancel, "The render was cancelled.")
    output, poster = Path(req.output), Path(req.poster)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.stem + ".part.mp4")
    moved = False
    try:
        samples, rate = _speech_track(req, progress)
        cancel(force=True)
        seconds = len(samples) / rate
        if req.avatar_kind == "video":
            width, height, fps, first = _frames_for_video(req, partial, samples, rate, seconds, progress, cancel)
        else:
            width, height, fps, first = _frames_for_photo(req, partial, samples, rate, seconds, progress, cancel)
        cancel(force=True)
        media.report_progress(progress, "finalize", 0.0)
        os.replace(partial, output)
        moved = True
        media.write_poster(first, poster)
        info = media.probe_in_process(output)
        media.report_progress(progress, "finalize", 1.0)
    except BaseException:
        partial.unlink(missing_ok=True)
        if moved:  # only a file this call put in place; never a caller's earlier output
            output.unlink(missing_ok=True)
        raise
    return RenderResult(
        video_path=output,
        poster_path=poster,
        duration=info.duration,
        width=width,
        height=height,
        fps=float(fps),
        frame_count=info.frame_count,
    )


def _frames_for_video(req, partial, samples, rate, seconds, progress, cancel):
    ticker = media.ProgressThrottle(progress, "frames")
    ticker(0.0, force=True)
    with media.VideoReader(req.avatar_media) as reader:
        out_rate = media.rational_fps(req.fps) if req.fps else reader.rate
        n_out = max(1, int(round(seconds * float(out_rate))))
        indices = _resampled_sequence(reader.frame_count, n_out, req.loop_mode, float(reader.rate), float(out_rate))
        compositor = BackgroundCompositor(req.background, (reader.width, reader.height))
        needs_rgb = compositor.active or reader.rotation != 0
        first: np.ndarray | None = None
        try:
            with media.VideoWriter(
                partial, width=reader.width, height=reader.height, fps=out_rate, audio=samples, sample_rate=rate
            ) as writer:
                for k, frame in enumerate(reader.frames(indices)):
                    cancel()
                    if needs_rgb or first is None:
                        rgb = compositor.apply(reader.rgb(frame))
                        if first is None:
                            first = rgb  # the poster; converted once even on the YUV path
                        writer.write(rgb if needs_rgb else frame)
                    else:
                        # YUV straight from the decoder into the encoder: no colour conversion.
                        writer.write(frame)
                    ticker((k + 1) / n_out)
        finally:
            compositor.close()
    ticker(1.0, force=True)
    return reader.width, reader.height, out_rate, first


def _frames_for_photo(req, partial, samples, rate, seconds, progress, cancel):
    ticker = media.ProgressThrottle(progress, "frames")
    ticker(0.0, force=True)
    rgb = _fit_photo(media.load_image_rgb(req.avatar_media), MAX_PREPARED_LONG_SIDE)
    compositor = BackgroundCompositor(req.background, (rgb.shape[1], rgb.shape[0]))
    rgb = compositor.apply(rgb)
    compositor.close()
    out_rate = media.rational_fps(req.fps or PHOTO_FPS)
    n_out = max(1, int(round(seconds * float(out_rate))))
    frame = media.rgb_to_frame(rgb)  # converted once; x264 copies each input picture
    with media.VideoWriter(
        partial, width=rgb.shape[1], height=rgb.shape[0], fps=out_rate, audio=samples, sample_rate=rate
    ) as writer:
        for k in range(n_out):
            cancel()
            writer.write(frame)
            ticker((k + 1) / n_out)
    ticker(1.0, force=True)
    return rgb.shape[1], rgb.shape[0], out_rate, rgb


__all__ = [
    "CancelFn",
    "LOOP_MODES",
    "PreparedAvatar",
    "ProgressFn",
    "RenderRequest",
    "RenderResult",
    "frame_index_sequence",
    "loop_index",
    "prepare_avatar",
    "render",
]

