"""The footage's own speech, recognised for the library's viseme labels and mouth model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import media
from ..errors import InputRejected


def own_trajectory(video: Path, audio, start: float, end: float, fps: float):
    """The trajectory of the footage's own sound between ``start`` and ``end`` (or None)."""
    from .. import speech, visemes

    if audio is None:
        try:
            samples, rate = speech.load_audio(video, sample_rate=16000), 16000
        except InputRejected:
            return None
    else:
        samples, rate = np.asarray(audio[0], np.float32), int(audio[1])
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
    first, last = int(round(start * rate)), int(round(end * rate))
    segment = samples[first:last]
    if len(segment) < rate // 2 or float(np.abs(segment).max(initial=0.0)) < 1e-4:
        return None
    return visemes.trajectory_from_audio(segment, rate, fps)


class OwnSpeech:
    """Recognises a source video's speech on a worker thread, aligned the way
    ``media.normalise_video`` aligns it (sample 0 at the first video frame), so the
    trajectory matches the normalised footage's frames. ``result(fps)`` waits for it; None
    when the video has no usable sound or the frame rate turned out different."""

    def __init__(self, source: Path):
        self._value: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(Path(source),), name="own-speech", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop early (preparation failed or was cancelled) and wait for the thread."""
        self._stop.set()
        self._thread.join()

    def _work(self, source: Path) -> None:
        from .. import speech, visemes

        try:
            with media.open_input(source) as container:
                if not container.streams.video or not container.streams.audio:
                    return
                video, audio = container.streams.video[0], container.streams.audio[0]
                fps = float(media.standard_rate(video.average_rate or video.guessed_rate))
                offset = 0.0
                if video.start_time is not None and audio.start_time is not None:
                    offset = float(video.start_time * video.time_base) - float(audio.start_time * audio.time_base)
            samples = speech.load_audio(source, sample_rate=16000)
            shift = int(round(offset * 16000))
            samples = samples[shift:] if shift >= 0 else np.concatenate([np.zeros(-shift, np.float32), samples])
            if len(samples) < 8000 or float(np.abs(samples).max(initial=0.0)) < 1e-4:
                return
            self._value["fps"] = fps
            # decoded in a child process: this one's cores are busy tracking the face
            self._value["trajectory"] = visemes.trajectory_from_audio(samples, 16000, fps, local_share=0.0,
                                                                      stop=self._stop)
        except Exception:  # the library falls back to the normalised video's own track
            self._value.clear()

    def result(self, fps: float, check_cancel: Callable[[], None] | None = None):
        """Wait for the trajectory; ``check_cancel`` (raising ``Cancelled``) is called
        while waiting, and a cancel stops the recognition too."""
        while self._thread.is_alive():
            if check_cancel is not None:
                try:
                    check_cancel()
                except BaseException:
                    self.close()
                    raise
            self._thread.join(timeout=0.25)
        if abs(self._value.get("fps", -1.0) - fps) > 0.01:
            return None
        return self._value.get("trajectory")
