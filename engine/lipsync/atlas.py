"""The atlas: every usable frame's canonical mouth crop, as one small H.264 stream (~1 KB a
frame) inside the library, written during preparation and read at random during renders."""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..face import yuv_planes

ATLAS_GOP = 4  # frames between keyframes in the atlas: a jump decodes at most this many
# "ultrafast" at crf 16: a little sharper than "superfast" at crf 17 (PSNR 47 against 46.4 dB
# on the bench footage's crops) for half the encoder's CPU, in ~40 % more bytes.
ATLAS_CRF = 16
ATLAS_PRESET = "ultrafast"
ATLAS_RATE = 25  # the atlas's nominal frame rate (its frames are numbered, not timed)


class AtlasWriter:
    """Canonical mouth crops, straight from the source's YUV planes into a small H.264 file:
    no B-frames and a keyframe every ATLAS_GOP frames, so any crop decodes after at most
    ATLAS_GOP - 1 others, each as soon as its packet is in."""

    def __init__(self, path: Path, width: int, height: int):
        import av

        self._av = av
        self.path = Path(path)
        self.width, self.height = width, height
        self.count = 0
        self.closed = False
        self.container = av.open(str(self.path), mode="w", format="mp4")
        stream = self.container.add_stream("libx264", rate=ATLAS_RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "preset": ATLAS_PRESET,
            "crf": str(ATLAS_CRF),
            "x264-params": f"keyint={ATLAS_GOP}:min-keyint={ATLAS_GOP}:scenecut=0:bframes=0",
        }
        self.stream = stream

    def add(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
        y, u, v = planes
        data = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(self.height * 3 // 2, self.width)
        # The source's own YUV values go in untouched, whatever matrix they were made with.
        frame = self._av.VideoFrame.from_ndarray(data, format="yuv420p")
        frame.pts = self.count
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.count += 1
        return self.count - 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.container.close()
            except Exception:  # already broken; the file is removed with its folder
                pass


class AtlasReader:
    """Random access to the atlas crops. All packets sit in memory; a sequential read decodes
    one small frame, a jump restarts the decoder at the keyframe before it (at most
    ATLAS_GOP - 1 extra frames). No demuxer seeks."""

    def __init__(self, data: bytes):
        import av

        self.container = av.open(io.BytesIO(data), mode="r", format="mp4")
        stream = self.container.streams.video[0]
        self.packets = [packet for packet in self.container.demux(stream) if packet.size]
        self.keyframe = np.array([packet.is_keyframe for packet in self.packets], bool)
        self.codec = stream.codec_context
        self.codec.thread_type = "NONE"
        self.cache: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self.next_index = -1
        self.decoded = 0

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hit = self.cache.get(index)
        if hit is not None:
            self.cache.move_to_end(index)
            return hit
        if not 0 <= index < len(self.packets):
            raise EngineError("The avatar's mouth library is damaged; prepare the avatar again.")
        if not (0 <= self.next_index <= index and index - self.next_index < ATLAS_GOP):
            start = index
            while start > 0 and not self.keyframe[start]:
                start -= 1
            self.codec.flush_buffers()
            self.next_index = start
        planes = None
        while self.next_index <= index:
            frames = self.codec.decode(self.packets[self.next_index])
            self.decoded += 1
            at = self.next_index
            self.next_index += 1
            if frames and at >= index - 1:
                planes = tuple(np.array(p) for p in yuv_planes(frames[-1]))
                self.cache[at] = planes
                while len(self.cache) > 48:
                    self.cache.popitem(last=False)
        if planes is None or index not in self.cache:
            raise EngineError("The avatar's mouth library is damaged; prepare the avatar again.")
        return self.cache[index]

    def close(self) -> None:
        self.cache.clear()
        self.packets = []
        self.container.close()
