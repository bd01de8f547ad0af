"""Encoding: MP4 files every browser plays, and the frame rates and sizes they need.

Decoders and encoders stream frames; nothing holds a whole video in memory.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import EngineError
from .colour import BT709, RANGE_MPEG, rgb_to_frame, to_encoder_frame

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


def standard_rate(rate: Fraction | None) -> Fraction:
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


# x264 "superfast" leaves room on 2 cores for the per-frame work of later stages; crf 20 is
# visually clean for faces. Both are module constants so `make bench` can compare presets.
DEFAULT_PRESET = "superfast"
DEFAULT_CRF = 20
_AAC_RATES = (48000, 44100)


class VideoWriter:
    """MP4 writer: H.264 yuv420p (BT.709, constant frame rate) + AAC, ``+faststart``.

    Use as a context manager. Audio either comes whole (``audio=``, float32 -1..1, mono
    ``(n,)`` or ``(n, channels)``) and is interleaved with the video as frames arrive, or
    streamed with ``write_audio`` (give ``sample_rate`` up front). Quality is constant (``crf``)
    unless a ``bitrate`` (bits per second) is given. If the block raises, the partial file is
    deleted.
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
        bitrate: int | None = None,
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
            cc.colorspace = cc.color_primaries = cc.color_trc = BT709
            cc.color_range = RANGE_MPEG
            if bitrate:
                # An average bitrate with a capped peak, so a "match the source" request stays
                # near the source's size instead of the CRF's quality-driven one.
                cc.bit_rate = int(bitrate)
                vs.options = {"preset": preset, "maxrate": str(int(bitrate * 1.5)), "bufsize": str(int(bitrate * 2))}
            else:
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
            out = to_encoder_frame(frame, self.width, self.height)
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
