"""Output formats: the stream parameters each option gives, read back with PyAV."""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine import media
from engine.errors import InputRejected
from engine.output import FrameShaper, OutputFormat, check_output_format, encoder_settings, plan_frame


def test_keeping_everything_changes_nothing():
    plan = plan_frame(OutputFormat(), 1280, 720)
    assert plan.is_identity and plan.size == (1280, 720)


@pytest.mark.parametrize(
    ("resolution", "aspect", "size"),
    [
        (720, "keep", (1280, 720)),
        (480, "keep", (854, 480)),
        (None, "9:16", (404, 720)),
        (480, "1:1", (480, 480)),
        (None, "16:9", (1280, 720)),
    ],
)
def test_each_resolution_and_aspect_gives_its_size(resolution, aspect, size):
    plan = plan_frame(OutputFormat(resolution=resolution, aspect=aspect), 1280, 720)
    assert plan.size == size
    assert all(side % 2 == 0 for side in plan.size)


def test_a_portrait_crop_follows_the_face():
    left = plan_frame(OutputFormat(aspect="9:16"), 1280, 720, face=(0.2, 0.4))
    right = plan_frame(OutputFormat(aspect="9:16"), 1280, 720, face=(0.8, 0.4))
    assert left.crop[0] < right.crop[0]
    x, _, w, _ = left.crop
    assert x <= 0.2 * 1280 <= x + w
    # at the frame's edge the crop stops there rather than showing what is not in the footage
    edge = plan_frame(OutputFormat(aspect="9:16"), 1280, 720, face=(0.99, 0.4))
    assert edge.crop[0] + edge.crop[2] == 1280


def test_a_landscape_crop_of_a_portrait_keeps_room_above_the_face():
    plan = plan_frame(OutputFormat(aspect="16:9"), 720, 1280, face=(0.5, 0.3))
    _, y, _, h = plan.crop
    assert y < 0.3 * 1280 < y + h
    assert (0.3 * 1280 - y) / h == pytest.approx(0.42, abs=0.02)


def test_it_refuses_to_blow_up_a_small_source_unless_asked():
    with pytest.raises(InputRejected) as refused:
        check_output_format(OutputFormat(resolution=1080), width=1280, height=720)
    assert str(refused.value) == (
        "This avatar gives at most 720 pixels on the short edge, so 1080p would be blown up and "
        "blurry; choose a lower resolution, or allow upscaling."
    )
    check_output_format(OutputFormat(resolution=1080, upscale=True), width=1280, height=720)
    assert plan_frame(OutputFormat(resolution=1080, upscale=True), 1280, 720).size == (1920, 1080)


def test_4k_is_offered_from_a_4k_source():
    check_output_format(OutputFormat(resolution=2160), width=3840, height=2160)
    assert plan_frame(OutputFormat(resolution=2160), 3840, 2160).is_identity


def test_it_refuses_options_it_does_not_offer():
    for fmt, field in ((OutputFormat(aspect="4:3"), "aspect"), (OutputFormat(resolution=999), "resolution"),
                       (OutputFormat(fps=24), "fps")):
        with pytest.raises(InputRejected) as refused:
            check_output_format(fmt, width=1280, height=720)
        assert refused.value.field == field


def _write(path, fmt, plan, frames, fps=25):
    shaper = FrameShaper(plan)
    with media.VideoWriter(path, width=plan.size[0], height=plan.size[1], fps=fps, **encoder_settings(fmt)) as writer:
        for frame in frames:
            writer.write(shaper(frame))


def test_shaped_frames_reach_the_encoder_at_the_planned_size(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(rng.random((360, 640, 3)) * 255).astype(np.uint8) for _ in range(10)]
    for aspect, resolution in (("9:16", None), ("1:1", 240), ("keep", 240)):
        fmt = OutputFormat(aspect=aspect, resolution=resolution)
        plan = plan_frame(fmt, 640, 360)
        out = tmp_path / f"{aspect.replace(':', 'x')}.mp4"
        _write(out, fmt, plan, frames)
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == plan.size
            assert stream.frames == 10


def test_a_decoded_frame_is_cropped_too(tmp_path):
    source = tmp_path / "source.mp4"
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (360, 1, 3))
    with media.VideoWriter(source, width=640, height=360, fps=25) as writer:
        for _ in range(3):
            writer.write(gradient)
    plan = plan_frame(OutputFormat(aspect="1:1"), 640, 360, face=(0.9, 0.5))
    with av.open(str(source)) as container:
        decoded = next(container.decode(video=0))
        shaped = FrameShaper(plan)(decoded)
    assert shaped.shape == (360, 360, 3)
    # the right-hand part of the gradient: bright
    assert shaped[:, :, 0].mean() > 160


def test_matching_the_source_bitrate_clamps_it_and_sets_the_stream_rate(tmp_path):
    assert encoder_settings(OutputFormat()) == {"crf": 17}
    assert encoder_settings(OutputFormat(match_bitrate=400_000)) == {"bitrate": 1_000_000}
    assert encoder_settings(OutputFormat(match_bitrate=40_000_000)) == {"bitrate": 9_000_000}
    rng = np.random.default_rng(1)
    frames = [(rng.random((360, 640, 3)) * 255).astype(np.uint8) for _ in range(50)]
    sizes = {}
    for bitrate in (1_000_000, 4_000_000):
        fmt = OutputFormat(match_bitrate=bitrate)
        out = tmp_path / f"{bitrate}.mp4"
        _write(out, fmt, plan_frame(fmt, 640, 360), frames)
        sizes[bitrate] = out.stat().st_size
        with av.open(str(out)) as container:
            measured = container.streams.video[0].bit_rate
        assert 0.6 * bitrate < measured < 1.6 * bitrate
    assert sizes[4_000_000] > 2 * sizes[1_000_000]
