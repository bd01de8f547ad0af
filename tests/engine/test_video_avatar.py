"""Video avatars: the mouth library, unit-selection lip sync, loop modes, targets, intervals."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from engine import media, pipeline, speech, video_avatar, visemes
from engine.errors import Cancelled, InputRejected
from engine.face import FaceTracker, face_mesh, mouth_aperture
from engine.pipeline import RenderRequest, prepare_avatar, render
from engine.video_avatar import background_indices, build_library, check_render_options, synthesize_frames
from tests import mediagen

PBM_SCRIPT = "Bob bought a big map. My mum baked a pumpkin pie, maybe by mistake."
NEW_SCRIPT = "Good morning! Today we talk about oranges, apples and a very big cheese."


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("video-avatar")


@pytest.fixture(scope="module")
def speaking(root) -> Path:
    """12 s of the astronaut speaking: her mouth opens and closes with espeak's timeline."""
    return mediagen.make_speaking_video(root / "speaking.mp4", seconds=12.0)


@pytest.fixture(scope="module")
def library(root, speaking):
    path = root / "speaking.npz"
    report = build_library(speaking, path)
    return path, report


def _trajectory(text: str, fps: float = 25.0):
    return visemes.trajectory_from_speech(speech.synthesize(text), fps=fps)


def _decoded_rgb(path: Path, indices) -> list[np.ndarray]:
    with media.VideoReader(path) as reader:
        return [reader.rgb(frame) for frame in reader.frames(indices)]


# -- loop modes (pure) ------------------------------------------------------------------------


def test_reverse_splice_turns_at_both_ends_without_a_jump():
    order = list(background_indices(5, 14, loop_mode="reverse", fps=25))
    assert order == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3]
    assert all(abs(a - b) == 1 for a, b in zip(order, order[1:]))


def test_forward_splice_cuts_back_to_the_start():
    assert list(background_indices(5, 12, loop_mode="forward", fps=25)) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


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


@pytest.fixture(scope="module")
def coded_footage(root) -> Path:
    """10 s at 5 fps: frame k shows k as six black/white stripes."""
    return mediagen.make_coded_video(root / "coded.mp4", frames=50, fps=5, bits=6)


@pytest.mark.parametrize(
    "mode, start, end, seams",
    [
        ("reverse", None, None, {48: [48, 49, 48, 47], 96: [2, 1, 0, 1]}),
        ("forward", None, None, {48: [48, 49, 0, 1]}),
        ("circle", None, None, {0: [0, 1], 48: [48, 49, 49, 48]}),
        ("custom", 2.0, 8.0, {0: [10, 11], 28: [38, 39, 38, 37], 56: [12, 11, 10, 11]}),
    ],
)
def test_rendered_backgrounds_follow_the_loop_mode_at_the_seams(root, coded_footage, mode, start, end, seams):
    voice = mediagen.make_audio(root / "twenty.wav", seconds=20.0)  # 100 frames over 50 of footage
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=coded_footage, output=root / f"seam-{mode}.mp4",
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


def test_render_refuses_a_short_custom_segment_before_any_work(root, coded_footage):
    with pytest.raises(InputRejected) as caught:
        render(RenderRequest(avatar_kind="video", avatar_media=coded_footage, output=root / "never.mp4",
                             poster=root / "never.jpg", text="Hello there.", loop_mode="custom",
                             segment_start=1.0, segment_end=4.0))
    assert caught.value.code == "segment_short"
    assert not (root / "never.mp4").exists()


# -- the library ------------------------------------------------------------------------------------


def test_library_of_a_speaking_video(library, speaking):
    path, report = library
    assert path.suffix == video_avatar.LIBRARY_SUFFIX and path.stat().st_size < 2_000_000
    lib = video_avatar.Library.load(path)
    assert lib.frame_count == report.total_frames == 300
    assert report.usable_frames >= 290
    assert report.open_frames > 20 and report.closed_frames > 20
    assert not any("open-mouth" in w or "closed-mouth" in w for w in report.warnings)
    assert sum(report.viseme_coverage.values()) >= 250 and report.viseme_coverage["PP"] > 0
    assert report.head_motion["shift_range"] < 0.5  # the pan is a few pixels
    assert set(report.to_dict()) >= {"total_frames", "usable_frames", "viseme_coverage", "head_motion", "warnings"}
    # every frame's landmarks, taken back to the frame, sit where FaceMesh finds them
    to_frame = np.array([video_avatar.invert_transform(t) for t in lib.transform])
    nose_lip = [video_avatar._POS[i] for i in (1, 13, 152)]
    placed = np.einsum("nij,nkj->nki", to_frame[:, :, :2], lib.points[:, nose_lip]) + to_frame[:, None, :, 2]
    for index, rgb in zip((0, 100, 200), _decoded_rgb(speaking, (0, 100, 200))):
        found = face_mesh(rgb, static=True)[0][[1, 13, 152]]
        # tracked and single-image FaceMesh disagree by a few px, most on the chin (152)
        assert np.abs(placed[index] - found).max() < 8
    # the measured mouth opens and closes (the video's mouth moves with its speech)
    assert lib.state[:, 0].max() > 0.12 and lib.state[:, 0].min() < 0.03


def test_the_mouth_model_hears_the_sound_and_still_reads_older_libraries(library, speaking):
    path, _ = library
    lib = video_avatar.Library.load(path)
    trajectory = visemes.trajectory_from_audio(speech.load_audio(speaking), 16000, lib.fps)
    n = min(trajectory.frame_count, lib.frame_count)
    inputs = video_avatar.model_inputs(trajectory)
    assert inputs.shape[1] == len(lib.model["x_mean"])  # trajectory and cepstrum, lagged
    rows = np.flatnonzero(lib.usable[:n])
    predicted = video_avatar.predict_state(lib, trajectory)
    assert np.corrcoef(predicted[rows, 0], lib.state[rows, 0])[0, 1] > 0.6
    # a library prepared before the model heard the sound: the trajectory alone
    lib.model = video_avatar._fit_model(video_avatar.model_inputs(trajectory, n, cepstrum=False), lib.state[:n], rows)
    older = video_avatar.predict_state(lib, trajectory)
    assert older.shape == predicted.shape
    assert np.corrcoef(older[rows, 0], lib.state[rows, 0])[0, 1] > 0.3


def test_a_still_mouth_gets_a_warning_the_creator_can_act_on(root):
    still = mediagen.make_talking_video(root / "still.mp4", seconds=4.0)
    report = build_library(still, root / "still.npz")
    assert report.usable_frames >= 95
    assert "Few open-mouth frames: record yourself reading aloud for at least 30 s." in report.warnings


# -- rendering ---------------------------------------------------------------------------------------


def test_every_p_b_m_gets_a_closed_mouth(library, speaking):
    path, _ = library
    trajectory = _trajectory(PBM_SCRIPT)
    n = trajectory.frame_count
    backgrounds = list(background_indices(300, n, loop_mode="reverse", fps=25))
    tracker = FaceTracker()
    apertures = []
    for rendered in synthesize_frames(media=speaking, library=path, trajectory=trajectory,
                                      background_indices=backgrounds):
        assert rendered.touched
        apertures.append(mouth_aperture(tracker.track(rendered.rgb)))
    tracker.close()
    apertures = np.array(apertures)
    assert len(apertures) == n
    times = np.arange(n) / trajectory.fps
    bilabials = [p for p in trajectory.phonemes if p.phoneme in ("p", "b", "m")]
    assert len(bilabials) >= 12
    for phone in bilabials:
        window = (times >= phone.start - 0.04) & (times <= phone.end + 0.04)
        assert apertures[window].min() < 0.04, f"{phone} not closed: {apertures[window].round(3)}"
    # … and the mouth does open between them
    assert np.percentile(apertures, 90) > 0.08


def test_disabled_intervals_and_faceless_frames_are_left_exactly_as_decoded(root, speaking):
    # The speaking video with no face at all from 4.0 s to 4.8 s (frames 100–119).
    patched = root / "faceless.mp4"
    backdrop = mediagen._backdrop(640, 480)
    with media.VideoReader(speaking) as reader, media.VideoWriter(patched, width=640, height=480, fps=25) as writer:
        for index, frame in reader.iter_sequential():
            writer.write(backdrop if 100 <= index < 120 else reader.rgb(frame))
    library = root / "faceless.npz"
    build_library(patched, library)
    lib = video_avatar.Library.load(library)
    assert not lib.ok[100:120].any() and lib.ok[:95].all()

    trajectory = _trajectory(NEW_SCRIPT)
    n = min(trajectory.frame_count, 200)
    backgrounds = list(range(n))
    intervals = [(1.0, 1.4), (6.0, 6.2)]  # seconds of the footage: frames 25–35 and 150–155
    rendered = list(synthesize_frames(media=patched, library=library, trajectory=trajectory,
                                      background_indices=backgrounds, disable_intervals=intervals))
    decoded = _decoded_rgb(patched, backgrounds[: len(rendered)])
    untouched = set(range(25, 36)) | set(range(100, 120)) | set(range(150, 156))
    for frame, original in zip(rendered, decoded):
        if frame.index in untouched:
            assert not frame.touched and frame.mouth_mask is None
            assert frame.rgb.tobytes() == original.tobytes()
        else:
            assert frame.touched
            mask = frame.mouth_mask
            assert mask.shape == original.shape[:2] and 0.0 <= mask.min() and mask.max() <= 1.0
            # Outside the mask the picture is the background frame's (the same YUV samples);
            # within a few pixels of its edge, 4:2:0 chroma shared with blended pixels differs.
            outside = ~cv2.dilate((mask > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
            assert np.abs(frame.rgb[outside].astype(int) - original[outside]).max() <= 3


def test_the_target_stays_the_same_person_with_two_faces(root):
    video = mediagen.make_two_people_video(root / "two.mp4", seconds=4.0)
    frames = list(media.iter_video_frames(video))
    width = frames[0].shape[1]

    def sides(reference):
        tracker = FaceTracker(reference=reference)
        found = [tracker.track(frame) for frame in frames]
        tracker.close()
        assert all(points is not None for points in found)
        return np.array([points[:, 0].mean() < width / 2 for points in found])

    # No reference: the largest face of the first frame (left), even once the right one is larger.
    assert sides(None).all()
    # A reference photo of the other person (the mirror image): the right face, throughout.
    assert not sides(np.ascontiguousarray(data.astronaut()[:, ::-1])).any()
    # The library follows the same rule.
    build_library(video, root / "two.npz", reference=np.ascontiguousarray(data.astronaut()[:, ::-1]))
    lib = video_avatar.Library.load(root / "two.npz")
    centre_x = [video_avatar.invert_transform(t)[0, 2] for t in lib.transform]
    assert min(centre_x) > width / 2


# -- the whole pipeline ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(root, speaking):
    """The speaking video prepared as the Django app prepares avatars; and its progress."""
    events: list[tuple[str, float]] = []
    avatar = prepare_avatar(kind="video", source=speaking, workdir=root / "avatar",
                            progress=lambda stage, f: events.append((stage, f)))
    return avatar, events


def test_prepared_avatar_renders_new_speech_with_a_moving_mouth(root, prepared):
    prepared, events = prepared
    stages = []
    for stage, _ in events:
        if not stages or stages[-1] != stage:
            stages.append(stage)
    assert stages == ["preview", "normalising", "tracking", "poster"]
    assert prepared.library_path is not None and prepared.library_path.is_file()
    assert prepared.report["usable_frames"] >= 290 and "warnings" in prepared.report

    frame_events: list[float] = []
    result = render(
        RenderRequest(
            avatar_kind="video", avatar_media=prepared.media_path, library=prepared.library_path,
            output=root / "lipsync.mp4", poster=root / "lipsync.jpg", text=NEW_SCRIPT,
        ),
        progress=lambda stage, f: frame_events.append(f) if stage == "frames" else None,
    )
    assert media.moov_before_mdat(result.video_path)
    assert len(frame_events) >= 2 and frame_events == sorted(frame_events) and frame_events[-1] == 1.0
    out = list(media.iter_video_frames(result.video_path))
    source = _decoded_rgb(prepared.media_path, range(len(out)))  # reverse loop: frame k ↔ source k
    assert len(out) == result.frame_count

    trajectory = _trajectory(NEW_SCRIPT)
    tracker = FaceTracker()
    rendered_ap = np.array([mouth_aperture(tracker.track(frame)) for frame in out])
    tracker.close()
    tracker = FaceTracker()
    source_ap = np.array([mouth_aperture(tracker.track(frame)) for frame in source])
    tracker.close()
    n = min(len(rendered_ap), trajectory.frame_count)
    jaw = trajectory.jaw[:n]
    # the mouth follows the new speech, not the footage's old one
    assert np.corrcoef(rendered_ap[:n], jaw)[0, 1] > 0.5
    assert np.corrcoef(rendered_ap[:n], jaw)[0, 1] > np.corrcoef(source_ap[:n], jaw)[0, 1] + 0.2
    # the mouth region changed; the top of the frame (hair, backdrop) did not
    lips = face_mesh(source[0], static=True)[0][[61, 291, 0, 17]]
    (x0, y0), (x1, y1) = lips.min(axis=0).astype(int), lips.max(axis=0).astype(int)
    mouth = (slice(y0 - 5, y1 + 5), slice(x0 - 5, x1 + 5))
    changed = np.mean([np.abs(a[mouth].astype(int) - b[mouth]).mean() for a, b in zip(out, source)])
    top = np.mean([np.abs(a[:120].astype(int) - b[:120]).mean() for a, b in zip(out, source)])
    assert changed > 3.0 and top < 1.5


def test_cancelling_a_lip_synced_render_leaves_nothing(root, prepared):
    prepared, _ = prepared
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    output = root / "cancelled.mp4"
    with pytest.raises(Cancelled):
        render(
            RenderRequest(avatar_kind="video", avatar_media=prepared.media_path, library=prepared.library_path,
                          output=output, poster=root / "cancelled.jpg", text=NEW_SCRIPT * 3),
            should_cancel=should_cancel,
        )
    assert not output.exists() and not list(root.glob("cancelled*.part*"))


def test_renders_without_a_library_as_before(root, speaking):
    result = render(RenderRequest(avatar_kind="video", avatar_media=speaking, output=root / "plain.mp4",
                                  poster=root / "plain.jpg", text="Just the footage."))
    first = next(media.iter_video_frames(result.video_path))
    assert np.abs(first.astype(int) - _decoded_rgb(speaking, [0])[0]).mean() < 3


def test_pipeline_loop_modes_include_circle_and_custom():
    assert pipeline.LOOP_MODES == ("reverse", "forward", "circle", "custom")
