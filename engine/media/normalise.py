"""One shape for every footage: H.264 yuv420p BT.709, constant frame rate, even size, AAC.

Phones record sideways, at variable frame rates, with sound that starts before the picture;
everything after this step can then index frames by time and seek without surprises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np

from ..errors import Cancelled, InputRejected
from ..progress import CancelFn, ProgressFn, ProgressThrottle
from .colour import (
    BT709,
    RANGE_MPEG,
    frame_to_rgb,
    rgb_to_frame,
    source_colorspace,
    source_range,
    to_encoder_frame,
)
from .probing import MediaInfo, open_input, probe_in_process, unreadable_error
from .sniff import sniff_type
from .writer import VideoWriter, even_size, standard_rate

# The prepared media is an intermediate every render decodes and encodes again, so its encode
# trades file size for CPU: x264 "ultrafast" at crf 18 keeps as much of the upload as
# "superfast" at crf 20 or more (luma PSNR +0.4 to +2 dB, clean and with camera noise) for
# about half the encoder's CPU, in files up to ~1.7x larger.
PREPARED_PRESET = "ultrafast"
PREPARED_CRF = 18


@dataclass
class PreviewClip:
    """The first ``seconds`` of the normalised footage, at most ``max_long_side``, written as
    a side output of ``normalise_video`` (no second decode); ``on_ready(path)`` fires, from
    the normalising thread, the moment the file is complete."""

    path: Path
    seconds: float = 3.0
    max_long_side: int = 1280
    on_ready: Callable[[Path], None] | None = None


def normalise_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    progress: ProgressFn | None = None,
    *,
    max_long_side: int | None = None,
    max_seconds: float | None = None,
    frame_filter: Callable[[np.ndarray], np.ndarray] | None = None,
    should_cancel: CancelFn | None = None,
    stage: str = "normalise",
    preset: str = PREPARED_PRESET,
    crf: int = PREPARED_CRF,
    on_frame: Callable[[int, av.VideoFrame], None] | None = None,
    master: str | os.PathLike | None = None,
    preview: PreviewClip | None = None,
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

    ``master``: where to keep the footage at its full size when ``max_long_side`` shrinks it
    (a 4K upload prepared at 1080p), frame for frame the same as ``dst`` — so renders work
    on the small file and only a render asking for more pixels reads the large one. A source
    that is already normal at its full size is copied there packet for packet; otherwise the
    same pass encodes it (the frame filter applied at full size, ``dst`` scaled from it).
    Nothing is written there when the source fits ``max_long_side``.

    ``preview``: a short clip of the start (``PreviewClip``), made from the frames and sound
    this pass produces anyway, so preparation needs no separate pass for its first look.
    """
    mime = sniff_type(src)
    if master is not None:
        master = Path(master)
        master.unlink(missing_ok=True)
    if frame_filter is None and _already_normal(src, mime, max_long_side=max_long_side, max_seconds=max_seconds):
        delivered = [0]
        previewed: list[Path] = []
        if preview is not None:
            ready = preview.on_ready
            preview = PreviewClip(preview.path, preview.seconds, preview.max_long_side,
                                  on_ready=lambda path: (previewed.append(path), ready and ready(path)))

        def counted(index: int, frame: av.VideoFrame) -> None:
            on_frame(index, frame)
            delivered[0] = index + 1

        try:
            return _copy_normal(src, dst, progress, stage=stage, should_cancel=should_cancel,
                                on_frame=counted if on_frame is not None else None, preview=preview)
        except av.error.InvalidDataError:
            # A damaged packet after all: re-encode (which repairs it), handing on only the
            # frames the copy had not reached, so nothing downstream sees a frame twice.
            if on_frame is not None:
                seen, handed = delivered[0], on_frame

                def on_frame(index: int, frame: av.VideoFrame) -> None:
                    if index >= seen:
                        handed(index, frame)
            if previewed:
                preview = None  # already delivered
    copied_master = False
    if master is not None and frame_filter is None and _fits(src, max_long_side) is False and _already_normal(
        src, mime, max_long_side=None, max_seconds=max_seconds
    ):
        # Reading packets costs next to nothing; re-encoding 4K would cost more than the rest.
        _copy_normal(src, master, None, stage=stage, should_cancel=should_cancel, on_frame=None)
        copied_master = True
    container = open_input(src, mime=mime)
    ticker = ProgressThrottle(progress, stage)
    ticker(0.0, force=True)
    writer: VideoWriter | None = None
    master_writer: VideoWriter | None = None
    audio_sink = None
    clip: _PreviewTee | None = None
    try:
        if not container.streams.video:
            raise InputRejected(
                "This file has no picture, only sound; upload a video of yourself.", field="source", code="no_video"
            )
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        astream = container.streams.audio[0] if container.streams.audio else None
        rate = standard_rate(vstream.average_rate or vstream.guessed_rate)
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

        def full_size(frame: av.VideoFrame) -> av.VideoFrame:
            """The frame upright, filtered, at the master's size: what ``dst`` is scaled from."""
            mw, mh = master_writer.width, master_writer.height
            if not rotation and frame_filter is None:
                return to_encoder_frame(frame, mw, mh)
            rgb = np.ascontiguousarray(frame_to_rgb(frame, rotation=rotation)[:mh, :mw])
            return rgb_to_frame(frame_filter(rgb) if frame_filter is not None else rgb)

        def emit(frame: av.VideoFrame) -> None:
            if master_writer is not None:
                frame = full_size(frame)
                master_writer.write(frame)
                out = to_encoder_frame(frame, writer.width, writer.height)
                if on_frame is not None:
                    on_frame(writer.frames_written, out)
                writer.write(out)
                if clip is not None:
                    clip.write(out)
                return
            if not rotation and frame_filter is None:
                if on_frame is None:
                    writer.write(frame)  # YUV end to end; the writer scales if needed
                    if clip is not None:
                        clip.write(frame)
                    return
                out = to_encoder_frame(frame, writer.width, writer.height)
            else:
                if rotation:
                    rgb = frame_to_rgb(frame, rotation=rotation)
                    if (rgb.shape[1], rgb.shape[0]) != (writer.width, writer.height):
                        rgb = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                            width=writer.width, height=writer.height, interpolation="AREA"
                        ).to_ndarray()
                else:
                    rgb = frame_to_rgb(to_encoder_frame(frame, writer.width, writer.height))
                out = rgb_to_frame(frame_filter(rgb) if frame_filter is not None else rgb)
            if on_frame is not None:
                on_frame(writer.frames_written, out)
            writer.write(out)
            if clip is not None:
                clip.write(out)

        for packet in container.demux(*streams):
            if finished:
                break
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                continue  # one damaged packet: keep going, the neighbours carry the picture
            for frame in decoded:
                if packet.stream.type == "audio":
                    aligner.add(frame, audio_sink)
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
                    if preview is not None:
                        clip = _PreviewTee(preview, (ow, oh), rate, preset=preset, crf=crf,
                                           sample_rate=aligner.sample_rate, channels=aligner.channels)
                    if master is not None and not copied_master and (ow, oh) != even_size(w, h):
                        master_writer = VideoWriter(
                            master, width=even_size(w, h)[0], height=even_size(w, h)[1], fps=rate, preset=preset,
                            crf=crf, sample_rate=aligner.sample_rate, channels=aligner.channels,
                        )
                    audio_sink = _AudioFanOut(*(out for out in (writer, master_writer, clip) if out is not None))
                    aligner.start(audio_sink, t0)
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
        aligner.finish(audio_sink, out_index * step)
        if clip is not None:
            clip.finish()  # footage shorter than the clip: all of it
        writer.close()
        if master_writer is not None:
            master_writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        if master_writer is not None:
            master_writer.abort()
        if clip is not None:
            clip.abort()
        if copied_master:
            master.unlink(missing_ok=True)
        raise
    finally:
        container.close()
    ticker(1.0, force=True)
    return probe_in_process(dst)


MAX_COPY_KEYFRAME_SECONDS = 2.0


class _AudioFanOut:
    """One aligned sound track for several writers (the normalised footage, its master, the
    preview clip)."""

    def __init__(self, *writers):
        self.writers = writers

    def write_audio(self, samples: np.ndarray) -> None:
        for writer in self.writers:
            writer.write_audio(samples)


class _PreviewTee:
    """Writes the first frames and samples it is handed into the preview clip, then closes it
    and tells ``on_ready``; everything after that is ignored."""

    def __init__(self, clip: PreviewClip, size: tuple[int, int], rate, *, preset: str, crf: int,
                 sample_rate: int | None, channels: int | None):
        self.clip = clip
        width, height = even_size(*size, max_long_side=clip.max_long_side)
        self.writer = VideoWriter(clip.path, width=width, height=height, fps=rate, preset=preset, crf=crf,
                                  sample_rate=sample_rate, channels=channels)
        self.frames_needed = max(1, int(round(clip.seconds * float(rate))))
        self.samples_needed = int(round(self.frames_needed / float(rate) * sample_rate)) if sample_rate else 0
        self.frames = self.samples = 0
        self.done = False

    def write(self, frame) -> None:
        if self.done or self.frames >= self.frames_needed:
            return
        self.writer.write(frame)
        self.frames += 1
        self._complete_yet()

    def write_audio(self, samples: np.ndarray) -> None:
        if self.done or self.samples >= self.samples_needed:
            return
        samples = samples[: self.samples_needed - self.samples]
        self.writer.write_audio(samples)
        self.samples += len(samples)
        self._complete_yet()

    def _complete_yet(self) -> None:
        if self.frames >= self.frames_needed and self.samples >= self.samples_needed:
            self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.writer.close()
        if self.clip.on_ready is not None:
            self.clip.on_ready(Path(self.clip.path))

    def abort(self) -> None:
        if not self.done:
            self.done = True
            self.writer.abort()


def _fits(src, max_long_side: int | None) -> bool | None:
    """Whether the picture is within ``max_long_side`` already (None: unreadable here)."""
    if not max_long_side:
        return True
    try:
        with open_input(src) as container:
            if not container.streams.video:
                return None
            cc = container.streams.video[0].codec_context
            return max(cc.width, cc.height) <= max_long_side
    except (InputRejected, av.error.FFmpegError):
        return None


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
    if not rate or standard_rate(rate) != rate:
        return False
    if audio is not None and video.start_time is not None and audio.start_time is not None:
        # normalised files start their sound with the first picture
        offset = float(video.start_time * video.time_base) - float(audio.start_time * audio.time_base)
        if abs(offset) > 0.5 / float(rate):
            return False
    first = next(container.decode(video), None)  # the cheap checks before reading every packet
    if first is None or (first.rotation or 0) % 360:
        return False
    if source_colorspace(first) != BT709 or source_range(first) != RANGE_MPEG:
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


def _copy_normal(src, dst, progress: ProgressFn | None, *, stage: str, should_cancel, on_frame,
                 preview: PreviewClip | None = None) -> MediaInfo:
    """Copy an already-normal file's packets into a fresh MP4 (faststart); decode its video
    only when ``on_frame`` or the ``preview`` clip wants the pictures (and its sound only for
    the clip)."""
    ticker = ProgressThrottle(progress, stage)
    ticker(0.0, force=True)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    container = open_input(src)
    output = None
    clip: _PreviewTee | None = None
    try:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        streams = [video] + ([audio] if audio is not None else [])
        total = float(video.duration * video.time_base) if video.duration else 0.0
        aligner = None
        if preview is not None:
            aligner = _AudioAligner(audio, limit_seconds=preview.seconds)
            clip = _PreviewTee(preview, (video.codec_context.width, video.codec_context.height),
                               standard_rate(video.average_rate or video.guessed_rate), preset=PREPARED_PRESET,
                               crf=PREPARED_CRF, sample_rate=aligner.sample_rate, channels=aligner.channels)
            # a normal file's sound starts with its picture (``_normal_streams``)
            aligner.start(clip, float(video.start_time * video.time_base) if video.start_time is not None else 0.0)
        output = av.open(str(dst), mode="w", format="mp4", container_options={"movflags": "+faststart"})
        copies = {stream.index: output.add_stream_from_template(stream) for stream in streams}
        index = 0

        def show(frame) -> None:
            nonlocal index
            if on_frame is not None:
                on_frame(index, frame)
            if clip is not None:
                clip.write(frame)
            index += 1

        for packet in container.demux(*streams):
            if packet.dts is None:
                continue  # the demuxer's end-of-stream marker
            is_video = packet.stream.index == video.index
            wanted = on_frame is not None or (clip is not None and not clip.done)
            pictures = packet.decode() if is_video and wanted else ()
            if not is_video and clip is not None and not clip.done:
                for sound in packet.decode():
                    aligner.add(sound, clip)
            packet.stream = copies[packet.stream.index]
            output.mux(packet)
            for frame in pictures:
                show(frame)
            if is_video:
                if should_cancel is not None and should_cancel():
                    raise Cancelled("Preparation was cancelled.")
                if total and packet.pts is not None:
                    ticker(float(packet.pts * video.time_base) / total)
        if on_frame is not None or (clip is not None and not clip.done):
            for frame in video.codec_context.decode(None):  # frames the decoder still holds
                show(frame)
        if clip is not None and not clip.done:
            aligner.finish(clip, clip.frames / float(clip.writer.rate))
            clip.finish()
        output.close()
        output = None
    except BaseException:
        if output is not None:
            output.close()
        if clip is not None:
            clip.abort()
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

