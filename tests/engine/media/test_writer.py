"""engine.media.writer: faststart MP4s with sound, and nothing left behind on failure."""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine import media
from tests.engine.media.helpers import pattern


def test_writer_makes_a_faststart_mp4_with_audio(tmp_path):
    rate = 22050
    audio = (0.2 * np.sin(2 * np.pi * 300 * np.arange(rate * 2) / rate)).astype(np.float32)
    path = tmp_path / "w.mp4"
    with media.VideoWriter(path, width=320, height=240, fps=25, audio=audio, sample_rate=rate) as writer:
        for i in range(50):
            writer.write(pattern(320, 240, i))
    assert media.moov_before_mdat(path)
    info = media.probe_in_process(path)
    assert (info.video_codec, info.audio_codec, info.frame_count) == ("h264", "aac", 50)
    assert info.duration == pytest.approx(2.0, abs=0.04)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize("frames", [27, 35])
def test_writer_closes_whatever_the_audio_length_at_a_resampled_rate(tmp_path, frames):
    # 22.05 kHz audio (espeak's rate) is resampled for AAC; these lengths once ended on two
    # packets with the same timestamp, and the muxer refused the file at close
    seconds = frames / 25 + 0.03
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 22050))).astype(np.float32)
    path = tmp_path / "speech.mp4"
    with media.VideoWriter(path, width=320, height=240, fps=25, audio=audio, sample_rate=22050) as writer:
        for k in range(frames):
            writer.write(pattern(320, 240, k))
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        decoded = sum(frame.samples for frame in container.decode(stream))
        assert decoded / stream.sample_rate == pytest.approx(seconds, abs=0.03)


def test_writer_removes_the_partial_file_on_error(tmp_path):
    path = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError):
        with media.VideoWriter(path, width=320, height=240, fps=25) as writer:
            writer.write(pattern(320, 240, 0))
            raise RuntimeError("boom")
    assert not path.exists()
