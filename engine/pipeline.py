"""The local engine's two entry points: ``prepare_avatar`` and ``render``.

This module only orchestrates: media I/O is ``media``, speech is ``speech`` and
``visemes``, the footage's frame order is ``timeline``, and lip sync is ``lipsync``.

A video avatar is prepared with a mouth library and rendered with lip sync when the request
names that library; without one (the face could not be tracked) the footage plays timed to
the speech, the mouth moving only as it did in the original. A photo avatar renders the
photo as it is.

Frames stream decoder → encoder: a video avatar's frames stay in YUV unless a background
or rotation forces RGB, and only a bounded chunk is cached for reverse playback (see
``media.VideoReader``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import media
from .background import Background, BackgroundCompositor
from .errors import EngineError, InputRejected
from .media.colour import to_encoder_frame
from .output import OutputFormat
from .progress import CancelCheck, CancelFn, ProgressFn, ProgressThrottle, report_progress
from .timeline import check_render_options, resampled_sequence

if TYPE_CHECKING:
    from .burnin import CaptionStyle

PHOTO_FPS = 25
# Renders run on 2 CPU cores: larger sources are prepared (tracked, and rendered by default) at
# 1080p, their full-size footage kept beside as the master a 4K render reads (``uses_master``).
MAX_PREPARED_LONG_SIDE = 1920
PREVIEW_SECONDS = 3.0  # an avatar's preview clip, and a render's preview
PREVIEW_LONG_SIDE = 1280


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


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


def warm_up() -> None:
    """Load what preparations and renders otherwise load in their first job: MediaPipe and a
    FaceMesh graph (~0.6 s), PocketSphinx. A worker calls this as it starts, so a creator's
    first preparation is as quick as the next."""
    import pocketsphinx  # noqa: F401

    from .face.mesh import new_mesh_graph

    new_mesh_graph(False, 1).close()


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
    library_path: Path | None = None  # the mouth library (video avatars)
    report: dict | None = None  # the preparation report (video avatars): usable frames, coverage, warnings
    # Video larger than MAX_PREPARED_LONG_SIDE: the footage at its own size, frame for frame
    # the same as ``media_path``, for renders that ask for more pixels (4K); else None.
    master_path: Path | None = None
    master_width: int | None = None
    master_height: int | None = None


def prepare_avatar(
    *,
    kind: str,
    source: Path,
    workdir: Path,
    background: Background = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    on_preview: Callable[[Path], None] | None = None,
    reference: Path | None = None,
) -> PreparedAvatar:
    """Turn a checked upload into what renders use, plus a poster and a 3-second preview.

    Stages, in order: ``preview`` (made first, straight from the source, so the creator sees
    something within seconds; ``on_preview(path)`` fires as soon as it exists), then
    ``normalising``, then — video only — ``tracking``, then ``poster``. A background (colour
    or image) is baked into the prepared media. On cancel or failure nothing is left in
    ``workdir``.

    For a video the face is tracked in every frame *while* it is normalised (one decode
    serves both), so most of the tracking work is reported under ``normalising``;
    ``tracking`` then recognises the footage's own speech and writes the mouth library
    (``library_path``) and the preparation report (``report``). With a ``reference`` photo,
    the face most like it is the one that speaks, whoever else is in the footage.
    """
    if kind not in ("video", "photo"):
        raise EngineError(f"Unknown avatar kind {kind!r}.")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cancel = CancelCheck(should_cancel, "Preparation was cancelled.")
    outputs: list[Path] = []
    try:
        if kind == "video":
            return _prepare_video(Path(source), workdir, background, progress, cancel, on_preview, outputs,
                                  reference=reference)
        return _prepare_photo(Path(source), workdir, background, progress, cancel, on_preview, outputs)
    except BaseException:
        for path in outputs:
            path.unlink(missing_ok=True)
        raise


def _prepare_video(source, workdir, background, progress, cancel, on_preview, outputs, *,
                   reference: Path | None = None) -> PreparedAvatar:
    from . import lipsync

    preview = workdir / "preview.mp4"
    media_path = workdir / "media.mp4"
    poster = workdir / "poster.jpg"
    library_path = workdir / ("library" + lipsync.LIBRARY_SUFFIX)
    master_path = workdir / "master.mp4"
    outputs.extend([preview, media_path, poster, library_path, master_path])

    report_progress(progress, "preview", 0.0)
    started = time.monotonic()
    # The preview is the normalising pass's own first 3 s (no second decode): it is ready as
    # soon as those frames are through, and the creator sees the stages in order. The face is
    # tracked from the first frame on (holding it back for the preview left a core half idle
    # and cost more time overall than it saved the preview); the recognition of the footage's
    # own speech (for the viseme labels) starts once the preview is out.
    previewed: list[Path] = []
    own_speech: list = []

    def preview_ready(path: Path) -> None:
        previewed.append(path)
        own_speech.append(lipsync.OwnSpeech(source))
        report_progress(progress, "preview", 1.0)
        if on_preview is not None:
            on_preview(path)
        cancel(force=True)

    def after_preview(stage: str, fraction: float) -> None:
        if previewed:
            report_progress(progress, stage, fraction)

    clip = media.PreviewClip(preview, PREVIEW_SECONDS, PREVIEW_LONG_SIDE, on_ready=preview_ready)
    try:
        reference_rgb = media.load_image_rgb(reference) if reference is not None else None
        builder = lipsync.LibraryBuilder(reference=reference_rgb)
        info, library_path, report = _track_and_normalise(
            source, media_path, library_path, builder, own_speech, background, after_preview, cancel, master_path,
            clip,
        )
    except BaseException:
        for speech in own_speech:
            speech.close()
        raise
    report["seconds"] = round(time.monotonic() - started, 2)
    report_progress(progress, "tracking", 1.0)
    cancel(force=True)

    _poster_stage(progress, media_path, poster, at=min(0.5, info.duration / 2))
    master = media.probe_in_process(master_path) if master_path.exists() else None
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
        library_path=library_path,
        report=report,
        master_path=master_path if master is not None else None,
        master_width=master.width if master is not None else None,
        master_height=master.height if master is not None else None,
    )


def _poster_stage(progress: ProgressFn | None, source, poster: Path, **options) -> None:
    report_progress(progress, "poster", 0.0)
    media.write_poster(source, poster, **options)
    report_progress(progress, "poster", 1.0)


def _track_and_normalise(source, media_path, library_path, builder, own_speech, background, progress, cancel,
                         master_path=None, preview=None):
    """One pass over the footage: normalise it and track the face in every frame (the
    builder's threads), then write the mouth library with the footage's own speech
    (``own_speech``: a list that holds its ``OwnSpeech`` once the preview clip is out).
    Returns (media info, library path or None, preparation report)."""
    with builder:
        builder.start_worker()
        info = media.normalise_video(
            source,
            media_path,
            progress,
            max_long_side=MAX_PREPARED_LONG_SIDE,
            frame_filter=_lazy_filter(background),
            should_cancel=cancel.as_fn(),
            stage="normalising",
            on_frame=builder.submit,
            master=master_path,
            preview=preview,
        )
        builder.join()
        cancel(force=True)
        report_progress(progress, "tracking", 0.0)
        with media.VideoReader(media_path, cache_bytes=0, threads=False) as reader:
            fps = reader.fps
        trajectory = own_speech[0].result(fps, cancel)  # started when the preview was out
        try:
            if trajectory is not None:
                report = builder.finish(library_path, trajectory=trajectory, fps=fps).to_dict()
            else:
                report = builder.finish(library_path, video=media_path, fps=fps).to_dict()
        except InputRejected as exc:
            # Pre-flight saw a face, FaceMesh never could: the avatar still plays, without lip sync.
            library_path = None
            report = {"usable_frames": 0, "warnings": [str(exc)]}
    return info, library_path, report


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

    report_progress(progress, "preview", 0.0)
    rgb = _fit_photo(media.load_image_rgb(source), MAX_PREPARED_LONG_SIDE)
    if background is not None:
        rgb = BackgroundCompositor(background, (rgb.shape[1], rgb.shape[0])).apply(rgb)
    media.write_still_video(_fit_photo(rgb, PREVIEW_LONG_SIDE), preview, seconds=PREVIEW_SECONDS, fps=PHOTO_FPS)
    report_progress(progress, "preview", 1.0)
    if on_preview is not None:
        on_preview(preview)
    cancel(force=True)

    report_progress(progress, "normalising", 0.0)
    tmp = media_path.with_name(media_path.name + ".part")
    Image.fromarray(rgb).save(tmp, format="PNG", compress_level=3)
    os.replace(tmp, media_path)
    report_progress(progress, "normalising", 1.0)

    _poster_stage(progress, rgb, poster)
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
    loop_mode: str = "reverse"  # one of timeline.LOOP_MODES
    background: Background = None
    fps: float | None = None  # video: the avatar's own rate; photo: 25
    library: Path | None = None  # PreparedAvatar.library_path: lip sync; None: the footage as it is
    segment_start: float | None = None  # seconds of footage: where the background starts
    segment_end: float | None = None  # … and ends (custom: required, ≥ 5 s after the start)
    # Seconds of the avatar's *footage* where the mouth is left as recorded (≤ 5 pairs).
    disable_intervals: list[tuple[float, float]] = field(default_factory=list)
    captions: bool = True  # SRT and WebVTT beside the output (see RenderResult)
    # A voice track's words, when the creator gives them; ``voice`` then names its language.
    transcript: str | None = None
    output_format: OutputFormat = field(default_factory=OutputFormat)  # size, shape, rate, quality
    caption_style: CaptionStyle | None = None  # burned-in captions; None: captions files only
    preview_seconds: float | None = None  # render only the speech's first seconds, to check quickly
    # PreparedAvatar.master_path: read instead of ``avatar_media`` when the output asks for more
    # pixels than that has (``uses_master``); the library's landmarks are scaled to it.
    avatar_master: Path | None = None


@dataclass
class RenderResult:
    """What ``render`` wrote.

    ``srt_path``/``vtt_path`` are the captions (``output`` with ``.srt``/``.vtt``), made
    from the speech's word timings: espeak's for a script, the aligned transcript's for a
    voice track, or the words PocketSphinx heard in an English voice track without one
    (``captions_source`` says which). Other voice tracks without a transcript have none.
    ``warnings`` are sentences for the creator, e.g. a transcript that did not match.
    """

    video_path: Path
    poster_path: Path
    duration: float
    width: int
    height: int
    fps: float
    frame_count: int
    srt_path: Path | None = None
    vtt_path: Path | None = None
    captions_source: str | None = None  # "script" | "transcript" | "machine"
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Speech:
    samples: np.ndarray
    rate: int
    trajectory: object | None  # visemes.Trajectory, when lip sync needs one
    words: list | None  # speech.WordEvent timings for captions
    caption_text: str | None  # what the captions show, timed by ``words``
    captions_source: str | None
    warnings: list[str]
    # Machine transcription still running beside the frames (captions files only need the
    # words at the end); ``settle`` collects them.
    pending: object | None = None

    def settle(self) -> None:
        if self.pending is not None:
            self.words = self.pending.result() or None
            self.captions_source = "machine" if self.words else None
            self.pending = None

    def abandon(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None


def _speech_track(req: RenderRequest, progress: ProgressFn | None, trajectory_fps: float | None = None) -> _Speech:
    """The speech as samples, with its mouth trajectory (at ``trajectory_fps``, only when
    asked for) and the word timings its captions are made from."""
    from . import speech, visemes

    report_progress(progress, "speech", 0.0)
    if req.audio is not None:
        speech.check_audio_driver(req.audio)
        rate = 48000
        samples = np.asarray(speech.load_audio(req.audio, sample_rate=rate), dtype=np.float32)
        if req.preview_seconds:
            samples = _faded_head(samples, rate, req.preview_seconds)
        _refuse_empty(samples)
        return _voice_track_speech(req, samples, rate, progress, trajectory_fps)
    if req.text is None or not req.text.strip():
        raise InputRejected("Type a script or upload a voice track.", field="script", code="no_driver")
    spoken = speech.synthesize(req.text, voice=req.voice, speed=req.speed, volume=req.volume)
    if req.preview_seconds:
        spoken = _speech_head(spoken, req.preview_seconds)
    samples = np.asarray(spoken.samples, dtype=np.float32)
    _refuse_empty(samples)
    trajectory = None
    if trajectory_fps:
        report_progress(progress, "speech", 0.5)
        trajectory = visemes.trajectory_from_speech(spoken, fps=trajectory_fps)
    report_progress(progress, "speech", 1.0)
    return _Speech(samples, int(spoken.sample_rate), trajectory, spoken.words, req.text, "script", [])


PREVIEW_FADE_SECONDS = 0.15  # a preview ends on a short fade, not a click mid-word


def _faded_head(samples: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    head = samples[: int(round(seconds * rate))].copy()
    fade = min(len(head), int(PREVIEW_FADE_SECONDS * rate))
    if fade:
        head[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return head


def _speech_head(spoken, seconds: float):
    """The first ``seconds`` of synthesized speech, its phoneme and word timings cut to match."""
    from .speech import Speech

    samples = _faded_head(np.asarray(spoken.samples, dtype=np.float32), spoken.sample_rate, seconds)
    end = len(samples) / spoken.sample_rate

    def cut(events):
        return [replace(e, end=min(e.end, end)) for e in events if e.start < end]

    return Speech(samples, spoken.sample_rate, cut(spoken.phonemes), cut(spoken.words))


def _refuse_empty(samples: np.ndarray) -> None:
    if samples.size == 0:
        raise InputRejected("The speech came out empty; check the script or the voice track.", field="script",
                            code="empty_speech")


def _voice_track_speech(req, samples, rate, progress, trajectory_fps) -> _Speech:
    """A voice track: its transcript aligned when given and it matches; otherwise the mouth
    follows the audio alone, and English speech is transcribed for the captions."""
    from . import speech, visemes
    from .speech.recognition import SAMPLE_RATE as RECOGNITION_RATE
    from .speech.voices import is_english

    samples16k = speech.resample(samples, rate, RECOGNITION_RATE)
    # A preview is the track's first seconds: the whole transcript can't be aligned to them.
    transcript = "" if req.preview_seconds else " ".join((req.transcript or "").split())
    warnings: list[str] = []
    aligned = None
    if transcript:
        report_progress(progress, "speech", 0.1)
        alignment = speech.align_transcript(samples16k, RECOGNITION_RATE, transcript, voice=req.voice)
        if alignment.matched:
            aligned = alignment
        else:
            warnings.append(alignment.reason)
    # English captions without a transcript are transcribed in a child process, started
    # before the mouth's own recognition: it runs beside it and the frames, on whichever core
    # is free, and its words are collected at the end.
    pending = None
    if aligned is None and req.captions and is_english(req.voice) and req.caption_style is None:
        pending = speech.BackgroundTranscription(samples16k, RECOGNITION_RATE)
    try:
        trajectory = None
        if trajectory_fps:
            report_progress(progress, "speech", 0.5)
            if aligned is not None:
                trajectory = visemes.trajectory_from_phonemes(
                    aligned.phonemes, samples, rate, trajectory_fps, alphabet=aligned.alphabet, words=aligned.words
                )
            elif pending is not None:
                # The transcription already has the second core: the phones are all decoded
                # here (the same phones; no second child to start and load the model in).
                trajectory = visemes.trajectory_from_audio(samples, rate, fps=trajectory_fps, local_share=1.0)
            else:
                trajectory = visemes.trajectory_from_audio(samples, rate, fps=trajectory_fps)
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise
    if pending is not None:
        report_progress(progress, "speech", 1.0)
        return _Speech(samples, rate, trajectory, None, None, None, warnings, pending=pending)
    if aligned is not None:
        words, text, source = aligned.words, transcript, "transcript"
    elif req.captions and is_english(req.voice):  # burned in: the words are needed before the frames
        report_progress(progress, "speech", 0.8)
        words, text, source = speech.transcribe(samples16k, RECOGNITION_RATE), None, "machine"
    else:
        words, text, source = None, None, None
    report_progress(progress, "speech", 1.0)
    return _Speech(samples, rate, trajectory, words or None, text, source if words else None, warnings)


def _check_request(req: RenderRequest) -> tuple[float | None, list[tuple[float, float]]]:
    """Refuse bad loop/segment/interval options before any work; (footage fps, intervals)."""
    footage_seconds = fps = None
    if req.avatar_kind == "video":
        with media.VideoReader(req.avatar_media, cache_bytes=0, threads=False) as reader:
            footage_seconds, fps = reader.frame_count / reader.fps, reader.fps
    intervals = check_render_options(
        loop_mode=req.loop_mode, footage_seconds=footage_seconds, segment_start=req.segment_start,
        segment_end=req.segment_end, disable_intervals=req.disable_intervals,
    )
    return fps, intervals


def render(req: RenderRequest, *, progress: ProgressFn | None = None, should_cancel: CancelFn | None = None) -> RenderResult:
    """Render the avatar speaking ``req.text`` (TTS) or ``req.audio``.

    Stages: ``speech``, ``frames`` (decode + compose + encode, streamed), ``finalize``.
    The output lasts as long as the speech (within one frame). On cancel (checked between
    frames) or failure the partial output is deleted and ``Cancelled``/the error propagates.
    """
    if req.avatar_kind not in ("video", "photo"):
        raise EngineError(f"Unknown avatar kind {req.avatar_kind!r}.")
    if req.avatar_master is not None and req.avatar_kind == "video":
        width, height = _source_size(req)
        if uses_master(req.output_format, width, height):
            req = replace(req, avatar_media=req.avatar_master)
    footage_fps, intervals = _check_request(req)
    lip_sync = req.avatar_kind == "video" and req.library is not None
    cancel = CancelCheck(should_cancel, "The render was cancelled.")
    output, poster = Path(req.output), Path(req.poster)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.stem + ".part.mp4")
    moved = False
    caption_paths: list[Path] = []
    spoken: _Speech | None = None
    try:
        out_fps = float(media.rational_fps(req.fps)) if req.fps else footage_fps
        trajectory_fps = out_fps if lip_sync else float(req.fps or PHOTO_FPS) if req.avatar_kind == "photo" else None
        spoken = _speech_track(req, progress, trajectory_fps)
        samples, rate, trajectory = spoken.samples, spoken.rate, spoken.trajectory
        cancel(force=True)
        seconds = len(samples) / rate
        finish = _Finish(req, spoken, _source_size(req))
        if req.avatar_kind == "video":
            _, _, fps, first = _frames_for_video(
                req, partial, samples, rate, seconds, progress, cancel, trajectory, intervals, finish=finish
            )
        else:
            _, _, fps, first = _frames_for_photo(req, partial, samples, rate, seconds, progress, cancel,
                                                 finish=finish)
        width, height = finish.size
        cancel(force=True)
        report_progress(progress, "finalize", 0.0)
        os.replace(partial, output)
        moved = True
        media.write_poster(finish.poster if finish.poster is not None else first, poster)
        spoken.settle()
        if req.captions and spoken.words:
            caption_paths = [output.with_suffix(".srt"), output.with_suffix(".vtt")]
            _write_captions(spoken.words, spoken.caption_text, seconds, width, height, *caption_paths)
        info = media.probe_in_process(output)
        report_progress(progress, "finalize", 1.0)
    except BaseException:
        if spoken is not None:
            spoken.abandon()
        partial.unlink(missing_ok=True)
        if moved:  # only files this call put in place; never a caller's earlier output
            output.unlink(missing_ok=True)
            for path in caption_paths:
                path.unlink(missing_ok=True)
        raise
    return RenderResult(
        video_path=output,
        poster_path=poster,
        duration=info.duration,
        width=width,
        height=height,
        fps=float(fps),
        frame_count=info.frame_count,
        srt_path=caption_paths[0] if caption_paths else None,
        vtt_path=caption_paths[1] if caption_paths else None,
        captions_source=spoken.captions_source if caption_paths else None,
        warnings=spoken.warnings,
    )


def uses_master(fmt: OutputFormat, width: int, height: int) -> bool:
    """Does this output need more pixels than prepared footage of ``width``×``height`` has?
    Then a render reads the avatar's master (4K from a 4K upload) where there is one."""
    from . import output

    if fmt.resolution is None:
        return False
    _, _, crop_w, crop_h = output.plan_frame(replace(fmt, upscale=False), width, height).crop
    return fmt.resolution > min(crop_w, crop_h)


class _Finish:
    """What happens to each composited frame on its way to the encoder: the creator's size
    and shape (``output.FrameShaper``), the burned-in captions (``burnin``), the quality
    setting; and the poster, which is the first finished frame."""

    def __init__(self, req: RenderRequest, spoken: _Speech, source_size: tuple[int, int]):
        from . import output

        fmt = req.output_format
        output.check_output_format(fmt, width=source_size[0], height=source_size[1])
        face = _face_centre(req) if fmt.aspect != "keep" else None
        self.plan = output.plan_frame(fmt, *source_size, face=face)
        self.shaper = output.FrameShaper(self.plan)
        self.encoder = output.encoder_settings(fmt)
        self.req, self.spoken = req, spoken
        self.poster: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.plan.size

    def writer(self, partial: Path, *, fps, audio: np.ndarray, sample_rate: int) -> "_FinishingWriter":
        from . import burnin

        width, height = self.plan.size
        encoder = media.VideoWriter(partial, width=width, height=height, fps=fps, audio=audio,
                                    sample_rate=sample_rate, **self.encoder)
        burning = burnin.burning_writer(
            _PosterTap(encoder, self), self.req.caption_style, words=self.spoken.words or (),
            duration=len(audio) / sample_rate, script=self.spoken.caption_text,
        )
        return _FinishingWriter(encoder, burning, self.shaper)


class _PosterTap:
    """Passes frames on, keeping the first as RGB for the poster."""

    def __init__(self, writer, finish: _Finish):
        self.writer, self.finish = writer, finish

    def write(self, frame) -> None:
        if self.finish.poster is None:
            if isinstance(frame, np.ndarray):
                self.finish.poster = frame
            else:  # a decoded frame the encoder will scale: the poster is the scaled one
                scaled = to_encoder_frame(frame, self.writer.width, self.writer.height)
                self.finish.poster = media.frame_to_rgb(scaled)
        self.writer.write(frame)

    def __getattr__(self, name: str):
        return getattr(self.writer, name)


class _FinishingWriter:
    def __init__(self, encoder, burning, shaper):
        self.encoder, self.burning, self.shaper = encoder, burning, shaper

    def write(self, frame) -> None:
        self.burning.write(self.shaper(frame))

    def __enter__(self) -> "_FinishingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.encoder.__exit__(*exc)

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)


def _source_size(req: RenderRequest) -> tuple[int, int]:
    """The size of the frames the engine composes, before the output's size and shape."""
    if req.avatar_kind == "video":
        with media.VideoReader(req.avatar_media, cache_bytes=0, threads=False) as reader:
            return reader.width, reader.height
    photo = _fit_photo(media.load_image_rgb(req.avatar_media), MAX_PREPARED_LONG_SIDE)
    return photo.shape[1], photo.shape[0]


def _face_centre(req: RenderRequest) -> tuple[float, float] | None:
    """Where a new shape is cropped around: the face in the avatar's first frame."""
    from .face import detect_faces

    if req.avatar_kind == "video":
        first = media.read_frames_at(req.avatar_media, [0.0])[0]
    else:
        first = _fit_photo(media.load_image_rgb(req.avatar_media), MAX_PREPARED_LONG_SIDE)
    faces = detect_faces(first)
    return faces[0].center if faces else None


def _write_captions(words, text: str | None, seconds: float, width: int, height: int, srt: Path, vtt: Path):
    """Captions showing ``text`` (else the words as heard), lines as long as the frame's
    shape allows, within the audio."""
    from . import captions

    cues = captions.build_cues(words, duration=seconds, script=text, width=width, height=height)
    captions.write_captions(cues, srt=srt, vtt=vtt)


def _frames_for_video(req, partial, samples, rate, seconds, progress, cancel, trajectory=None, intervals=(), *,
                      finish: _Finish):
    if trajectory is not None:
        return _lip_synced_frames(req, partial, samples, rate, seconds, progress, cancel, trajectory, intervals,
                                  finish=finish)
    ticker = ProgressThrottle(progress, "frames")
    ticker(0.0, force=True)
    with media.VideoReader(req.avatar_media) as reader:
        out_rate = media.rational_fps(req.fps) if req.fps else reader.rate
        n_out = max(1, int(round(seconds * float(out_rate))))
        indices = resampled_sequence(reader.frame_count, n_out, req.loop_mode, float(reader.rate), float(out_rate),
                                      start=req.segment_start, end=req.segment_end)
        compositor = BackgroundCompositor(req.background, (reader.width, reader.height))
        needs_rgb = compositor.active or reader.rotation != 0
        first: np.ndarray | None = None
        try:
            with finish.writer(partial, fps=out_rate, audio=samples, sample_rate=rate) as writer:
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


# Frames queued between lip sync and the encoder: their per-frame costs vary (a cut, a colour
# measurement, an encoder lookahead flush), and a deeper queue keeps both cores busy through
# the bumps. ~50 MB of 1080p frames.
PREFETCH_FRAMES = 16


def _prefetched(make_iterator: Callable[[], Iterator], depth: int = PREFETCH_FRAMES) -> Iterator:
    """Run an iterator in a worker thread, ``depth`` items ahead of the consumer.

    Lip sync (decode, unit selection, compositing: numpy and OpenCV, which release the GIL
    for their work) then overlaps with the encoder on the other core. Exceptions reach the
    consumer; when the consumer stops early the worker stops too.
    """
    import queue

    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        iterator = None
        try:
            iterator = make_iterator()
            for item in iterator:
                if not put(("item", item)):
                    break
            put(("end", done))
        except BaseException as exc:  # handed to the consumer
            put(("error", exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="lipsync", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        while worker.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def _lip_synced_frames(req, partial, samples, rate, seconds, progress, cancel, trajectory, intervals, *,
                       finish: _Finish):
    """Decode → lip sync (``lipsync.synthesize_frames``) → encode, streamed. Frames stay
    YUV: only the mouth's region of interest is touched, unless a background forces RGB."""
    from . import lipsync

    ticker = ProgressThrottle(progress, "frames")
    ticker(0.0, force=True)
    with media.VideoReader(req.avatar_media, cache_bytes=0, threads=False) as probe:
        width, height, src_rate, n_source = probe.width, probe.height, probe.rate, probe.frame_count
    out_rate = media.rational_fps(req.fps) if req.fps else src_rate
    n_out = max(1, int(round(seconds * float(out_rate))))
    # Footage frames whose own mouth can't be replaced are left out of the order: shown, their
    # mouth would move to the footage's words, not these.
    shown = lipsync.showable_frames(req.library, intervals)
    indices = list(resampled_sequence(n_source, n_out, req.loop_mode, float(src_rate), float(out_rate),
                                       start=req.segment_start, end=req.segment_end, shown=shown))
    compositor = BackgroundCompositor(req.background, (width, height))
    first: np.ndarray | None = None
    try:
        with finish.writer(partial, fps=out_rate, audio=samples, sample_rate=rate) as writer:
            # the same ~50 MB whatever the size: 16 frames of 1080p, 4 of a 4K master
            depth = max(4, min(PREFETCH_FRAMES, PREFETCH_FRAMES * 1920 * 1080 // (width * height)))
            frames = _prefetched(lambda: lipsync.synthesize_frames(
                media=req.avatar_media, library=req.library, trajectory=trajectory, background_indices=indices,
                disable_intervals=intervals,
            ), depth)
            written = 0
            last = None
            with closing(frames):  # on a cancel too: its thread stops now, not when it is collected
                for rendered in frames:
                    cancel()
                    if compositor.active or first is None:
                        rgb = compositor.apply(rendered.rgb)
                        if first is None:
                            first = rgb
                        last = rgb if compositor.active else rendered.frame
                    else:
                        last = rendered.frame
                    writer.write(last)
                    written += 1
                    ticker(written / n_out)
            # the trajectory covers the speech to the frame; never leave the video short
            while last is not None and written < n_out:
                writer.write(last)
                written += 1
    finally:
        compositor.close()
    ticker(1.0, force=True)
    return width, height, out_rate, first


PHOTO_STILL_WARNING = (
    "This photo could not be animated ({reason}), so the video shows it still; a frontal photo "
    "with the mouth in view will talk."
)


def _frames_for_photo(req, partial, samples, rate, seconds, progress, cancel, *, finish: _Finish):
    """The photo speaking the trajectory (``photo.animate``): mouth, blinks, small head motion."""
    from . import photo

    ticker = ProgressThrottle(progress, "frames")
    ticker(0.0, force=True)
    rgb = _fit_photo(media.load_image_rgb(req.avatar_media), MAX_PREPARED_LONG_SIDE)
    out_rate = media.rational_fps(req.fps or PHOTO_FPS)
    n_out = max(1, int(round(seconds * float(out_rate))))
    try:
        rig = photo.PhotoRig.from_image(rgb)
    except InputRejected as problem:
        # Avatars prepared before photos talked were never checked for it: they still render.
        finish.spoken.warnings.append(PHOTO_STILL_WARNING.format(reason=str(problem).rstrip(".")))
        frames = _still_photo_frames(rgb, req.background, n_out)
    else:
        life = photo.plan_life(samples, rate, float(out_rate), n_out)

        def every_other(first_frame: int) -> Callable[[], Iterator]:
            def animated():
                # converted here too, beside the encoder; only the head's box changes
                to_frame = media.BoxedRgbToFrame(rig.head_box(), rgb.shape[1], rgb.shape[0])
                for rgb_frame in photo.animate(rig, finish.spoken.trajectory, samples, rate, float(out_rate), n_out,
                                               background=req.background, life=life,
                                               frames=range(first_frame, n_out, 2)):
                    yield to_frame(rgb_frame)
            return animated

        # Two animators on alternate frames (a frame depends on nothing before it), so the
        # animation, which costs more than the encoder, uses both cores between encodes.
        frames = _interleaved([_prefetched(every_other(0), depth=PREFETCH_FRAMES // 2),
                               _prefetched(every_other(1), depth=PREFETCH_FRAMES // 2)])
    first = None
    from .lipsync.yuv import single_threaded_cv2

    # OpenCV's own thread pool only fights the animators and the encoder for the two cores.
    with single_threaded_cv2(), closing(frames), finish.writer(partial, fps=out_rate, audio=samples,
                                                               sample_rate=rate) as writer:
        for k, frame in enumerate(frames):
            cancel()
            if first is None:
                first = frame if isinstance(frame, np.ndarray) else media.frame_to_rgb(frame)
            writer.write(frame)
            ticker((k + 1) / n_out)
    ticker(1.0, force=True)
    return rgb.shape[1], rgb.shape[0], out_rate, first


def _interleaved(streams: list) -> Iterator:
    """An item from each stream in turn (the first, the second, …, the first again) until
    the one due has none left; the streams are closed however the consumer stops."""
    try:
        while True:
            for stream in streams:
                item = next(stream, _END)
                if item is _END:
                    return
                yield item
    finally:
        for stream in streams:
            stream.close()


_END = object()


def _still_photo_frames(rgb: np.ndarray, background: Background, n_out: int):
    compositor = BackgroundCompositor(background, (rgb.shape[1], rgb.shape[0]))
    rgb = compositor.apply(rgb)
    compositor.close()
    frame = media.rgb_to_frame(rgb)  # converted once; x264 copies each input picture
    for _ in range(n_out):
        yield frame


__all__ = [
    "PreparedAvatar",
    "RenderRequest",
    "RenderResult",
    "prepare_avatar",
    "render",
]

