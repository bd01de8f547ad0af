"""The footage's frame order: loop modes, custom segments, disabled intervals, bad options."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import media, timeline
from engine.errors import InputRejected
from engine.pipeline import RenderRequest, render
from engine.timeline import background_indices, check_render_options, frame_index_sequence, resampled_sequence
from tests import mediagen


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("timeline")


@pytest.fixture(scope="module")
def coded_footage(root) -> Path:
    """20 frames at 25 fps: frame k shows k as five black/white stripes."""
    return mediagen.make_coded_video(root / "coded.mp4", frames=20, fps=25, bits=5)


@pytest.fixture(scope="module")
def slow_coded_footage(root) -> Path:
    """10 s at 5 fps: frame k shows k as six black/white stripes."""
    return mediagen.make_coded_video(root / "coded-5fps.mp4", frames=50, fps=5, bits=6)


# -- loop modes (pure) ------------------------------------------------------------------------


def test_the_loop_modes_include_circle_and_custom():
    assert timeline.LOOP_MODES == ("reverse", "forward", "circle", "custom")


def test_reverse_splice_turns_at_both_ends_without_a_jump():
    order = list(background_indices(5, 14, loop_mode="reverse", fps=25))
    assert order == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3]
    assert all(abs(a - b) == 1 for a, b in zip(order, order[1:]))


def test_reverse_splice_turns_without_a_jump_or_a_repeat():
    order = list(frame_index_sequence(5, 14, "reverse"))
    assert order == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3]
    assert all(abs(a - b) == 1 for a, b in zip(order, order[1:]))


def test_forward_splice_cuts_back_to_the_start():
    assert list(background_indices(5, 12, loop_mode="forward", fps=25)) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_forward_splice_restarts_at_zero():
    assert list(frame_index_sequence(5, 12, "forward")) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_loop_sequences_for_short_audio_and_single_frames():
    assert list(frame_index_sequence(100, 3, "reverse")) == [0, 1, 2]
    assert list(frame_index_sequence(1, 4, "reverse")) == [0, 0, 0, 0]
    assert list(frame_index_sequence(2, 5, "reverse")) == [0, 1, 0, 1, 0]
    assert list(frame_index_sequence(7, 0, "forward")) == []


def test_circle_ends_on_its_first_frame():
    short = list(background_indices(100, 9, loop_mode="circle", fps=25))
    assert short == [0, 1, 2, 3, 4, 3, 2, 1, 0]
    long = list(background_indices(4, 15, loop_mode="circle", fps=25))
    assert long[0] == long[-1] == 0
    assert all(abs(a - b) <= 1 for a, b in zip(long, long[1:]))  # no jump anywhere
    started = list(background_indices(100, 7, loop_mode="circle", fps=10, start=2.0))
    assert started == [20, 21, 22, 23, 22, 21, 20]


def test_custom_segment_plays_back_and_forth_inside_it():
    # 10 fps: the segment 1.0–1.5 s is frames 10..14
    order = list(background_indices(100, 12, loop_mode="custom", fps=10, start=1.0, end=1.5))
    assert order == [10, 11, 12, 13, 14, 13, 12, 11, 10, 11, 12, 13]
    forward = list(background_indices(100, 7, loop_mode="forward", fps=10, start=1.0, end=1.5))
    assert forward == [10, 11, 12, 13, 14, 10, 11]


def test_frames_that_may_not_be_shown_are_left_out_of_every_loop_mode():
    # frames 3 and 4 would show the footage's own mouth (covered, turned away): never shown
    shown = [True, True, True, False, False, True, True, True]
    reverse = list(background_indices(8, 14, loop_mode="reverse", fps=25, shown=shown))
    assert reverse == [0, 1, 2, 5, 6, 7, 6, 5, 2, 1, 0, 1, 2, 5]
    assert list(background_indices(8, 8, loop_mode="forward", fps=25, shown=shown)) == [0, 1, 2, 5, 6, 7, 0, 1]
    circle = list(background_indices(8, 9, loop_mode="circle", fps=25, shown=shown))
    assert circle == [0, 1, 2, 5, 6, 5, 2, 1, 0]
    # … inside a custom segment too (10 fps: 0.2–0.8 s is frames 2..7)
    assert list(background_indices(8, 6, loop_mode="custom", fps=10, start=0.2, end=0.8, shown=shown)) == [
        2, 5, 6, 7, 6, 5]
    # at another output rate, the order resampled is the same order
    assert list(resampled_sequence(8, 8, "reverse", 25, 50, shown=shown)) == [0, 0, 1, 1, 2, 2, 5, 5]


def test_a_segment_with_no_frame_that_may_be_shown_plays_whole():
    shown = [True] * 10 + [False] * 10
    assert list(background_indices(20, 4, loop_mode="forward", fps=10, start=1.0, end=1.5, shown=shown)) == [
        10, 11, 12, 13]


def test_unknown_loop_mode_is_refused():
    with pytest.raises(InputRejected) as caught:
        list(frame_index_sequence(5, 5, "sideways"))
    assert caught.value.field == "loop_mode"


# -- loops on real footage --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_audio_longer_than_the_footage_loops(root, coded_footage, mode):
    voice = mediagen.make_audio(root / "two-seconds.wav", seconds=2.0)  # 50 frames over 20 of footage
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=coded_footage, output=root / f"loop-{mode}.mp4",
            poster=root / f"loop-{mode}.jpg", audio=voice, loop_mode=mode,
        )
    )
    codes = [mediagen.read_code(f) for f in media.iter_video_frames(result.video_path)]
    assert codes == list(frame_index_sequence(20, 50, mode))
    if mode == "reverse":
        assert codes[18:22] == [18, 19, 18, 17] and codes[37:41] == [1, 0, 1, 2]
    else:
        assert codes[18:22] == [18, 19, 0, 1]
    assert result.duration == pytest.approx(2.0, abs=1 / 25)
    assert mediagen.mp4_facts(result.video_path)["audio_rms"] > 0.02


def test_an_output_frame_rate_above_the_footage_repeats_frames(root, coded_footage):
    voice = mediagen.make_audio(root / "two-seconds.wav", seconds=2.0)
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=coded_footage, output=root / "fifty.mp4",
            poster=root / "fifty.jpg", audio=voice, loop_mode="forward", fps=50,
        )
    )
    codes = [mediagen.read_code(f) for f in media.iter_video_frames(result.video_path)]
    assert result.fps == 50.0 and len(codes) == 100
    assert codes[:6] == [0, 0, 1, 1, 2, 2] and codes[38:42] == [19, 19, 0, 0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, start, end, seams",
    [
        ("reverse", None, None, {48: [48, 49, 48, 47], 96: [2, 1, 0, 1]}),
        ("forward", None, None, {48: [48, 49, 0, 1]}),
        ("circle", None, None, {0: [0, 1], 48: [48, 49, 49, 48]}),
        ("custom", 2.0, 8.0, {0: [10, 11], 28: [38, 39, 38, 37], 56: [12, 11, 10, 11]}),
    ],
)
def test_rendered_backgrounds_follow_the_loop_mode_at_the_seams(root, slow_coded_footage, mode, start, end, seams):
    voice = mediagen.make_audio(root / "twenty.wav", seconds=20.0)  # 100 frames over 50 of footage
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=slow_coded_footage, output=root / f"seam-{mode}.mp4",
            poster=root / f"seam-{mode}.jpg", audio=voice, loop_mode=mode, segment_start=start, segment_end=end,
        )
    )
    codes = [mediagen.read_code(f) for f in media.iter_video_frames(result.video_path)]
    assert len(codes) == 100
    assert codes == list(background_indices(50, 100, loop_mode=mode, fps=5, start=start, end=end))
    for at, expected in seams.items():
        assert codes[at : at + len(expected)] == expected
    if mode == "circle":
        assert codes[0] == codes[-1]


# -- bad options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, code, words",
    [
        ({"loop_mode": "sideways"}, "loop_mode", "reverse, forward, circle or custom"),
        ({"loop_mode": "custom"}, "segment_missing", "start and an end"),
        ({"loop_mode": "custom", "segment_start": 2.0, "segment_end": 5.5}, "segment_short", "at least 5 s apart"),
        ({"loop_mode": "custom", "segment_start": 6.0, "segment_end": 16.0, "footage_seconds": 12.0},
         "segment_outside", "only 12.0 s long"),
        ({"loop_mode": "reverse", "segment_start": 3.0, "segment_end": 2.0}, "segment_order", "end after it starts"),
        ({"loop_mode": "reverse", "disable_intervals": [[0, 1]] * 6}, "intervals_too_many", "at most 5"),
        ({"loop_mode": "reverse", "disable_intervals": [[3, 4], [1, 2]]}, "intervals_order", "chronological order"),
        ({"loop_mode": "reverse", "disable_intervals": [[1, 3], [2, 4]]}, "intervals_order", "without overlaps"),
        ({"loop_mode": "reverse", "disable_intervals": [[2, 2]]}, "intervals_order", "end after it starts"),
        ({"loop_mode": "reverse", "disable_intervals": [[-1, 2]]}, "intervals_order", "0 s or later"),
        ({"loop_mode": "reverse", "disable_intervals": [["a", 2]]}, "intervals_format", "pair of times"),
    ],
)
def test_bad_loop_and_interval_options_are_refused_with_a_sentence(options, code, words):
    with pytest.raises(InputRejected) as caught:
        check_render_options(**options)
    assert caught.value.code == code
    message = str(caught.value)
    assert words in message and message.endswith(".") and message[0].isupper()


def test_good_options_pass():
    intervals = check_render_options(loop_mode="custom", segment_start=1.0, segment_end=6.0, footage_seconds=12.0,
                                     disable_intervals=[[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
    assert intervals == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0), (9.0, 10.0)]


@pytest.mark.slow
def test_render_refuses_a_short_custom_segment_before_any_work(root, slow_coded_footage):
    with pytest.raises(InputRejected) as caught:
        render(RenderRequest(avatar_kind="video", avatar_media=slow_coded_footage, output=root / "never.mp4",
                             poster=root / "never.jpg", text="Hello there.", loop_mode="custom",
                             segment_start=1.0, segment_end=4.0))
    assert caught.value.code == "segment_short"
    assert not (root / "never.mp4").exists()
