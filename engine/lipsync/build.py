"""Preparation: track the face in every frame of the footage and write its mouth library."""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import media
from ..errors import EngineError, InputRejected
from ..face import (
    EYE_OUTER,
    LIP_INNER,
    RIGID_INDICES,
    FaceTracker,
    YuvRegions,
    apply_transform,
    invert_transform,
    landmark_yaw,
    similarity_transform,
)
from ..progress import CancelFn, ProgressFn, StageTicker
from .atlas import AtlasWriter
from .covered import covered_frames, mouth_cues
from .library import (
    CANON_IOD_MAX,
    CANON_IOD_MIN,
    CLOSED_APERTURE,
    CROP_X,
    CROP_Y,
    K_RIGID,
    KEPT,
    LIBRARY_VERSION,
    MAX_YAW,
    OCCLUDED_Z,
    OPEN_APERTURE,
    UNUSUAL_Z,
    VISEME_ORDER,
    Library,
    PreparationReport,
)
from .mouth_model import (
    MIN_MODEL_FRAMES, fit_model, measure_state, model_inputs, trajectory_params, uses_loudness_model,
)
from .own_speech import own_trajectory
from .yuv import colour_matrix, single_threaded_cv2, warp_planes


def _kabsch_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R (3×3) that best maps centred point set ``a`` onto ``b`` (R @ a_i ≈ b_i)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    h = a.T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def _euler(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation matrix (y down, x right, z away)."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def _canonical_template(points3d: np.ndarray, iod: float) -> np.ndarray:
    """Rigid points of one face placed in canonical space (eyes level, IOD ``iod``)."""
    eyes = points3d[list(EYE_OUTER), :2]
    m = similarity_transform(eyes, np.array([[-iod / 2, 0.0], [iod / 2, 0.0]]))
    return apply_transform(m, points3d[RIGID_INDICES, :2])


def _teeth_measure(y_crop: np.ndarray, inner: np.ndarray) -> float:
    """How much bright (teeth) shows inside the inner lips: bright share of the mouth opening."""
    import cv2

    mask = np.zeros(y_crop.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    inside = y_crop[mask > 0]
    if inside.size < 4:
        return 0.0
    reference = float(np.median(y_crop))
    return float((inside > reference + 12).mean()) * min(1.0, inside.size / 40.0)


class LibraryBuilder:
    """Builds a mouth library from frames handed to it one at a time (``add``), so it can ride
    along another pass over the footage (preparation feeds it the frames as
    ``media.normalise_video`` encodes them: one decode for both). ``finish`` writes the file.

    Frames must be yuv420p and upright, in order, numbered from 0; ``start``/``end`` (seconds)
    limit which frames become units.
    """

    def __init__(self, *, fps: float | None = None, start: float = 0.0, end: float | None = None,
                 reference: np.ndarray | None = None):
        self.fps = None if fps is None else float(fps)
        self.start, self.end = float(start), end
        self.first_unit = 0 if fps is None else max(0, int(round(start * self.fps)))
        self.last_unit = None if end is None or fps is None else int(round(end * self.fps))
        # FaceMesh's graph takes ~0.7 s to load: made on first use, so with ``start_worker`` it
        # loads on the tracking thread while the caller already decodes.
        self.reference = reference
        self.tracker: FaceTracker | None = None
        self._closed = False
        self.kept: list[np.ndarray | None] = []
        self.transforms: list[np.ndarray] = []
        self.yaw: list[float] = []
        self.atlas_index: list[int] = []
        self.teeth: list[float] = []
        self.thumbs: list[np.ndarray] = []
        self.thumb_of: list[int] = []
        self.cues: list[tuple[float, float]] = []  # ``covered.mouth_cues``, NaN: not measured
        self.template: np.ndarray | None = None
        self.canon_iod: float | None = None
        self.crop = (0.0, 0.0, 0, 0)
        self.colour: int | None = None
        self.width = self.height = 0
        self._dir = Path(tempfile.mkdtemp(prefix="atlas-"))
        self.atlas_path = self._dir / "atlas.mp4"
        self.atlas_writer: AtlasWriter | None = None
        self._identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)

    def _in_range(self, index: int) -> bool:
        return index >= self.first_unit and (self.last_unit is None or index < self.last_unit)

    def add(self, index: int, frame) -> None:
        self._record(*self._track(index, frame))

    def _track(self, index: int, frame):
        """Stage one: FaceMesh (sequential by nature: each frame starts from the last)."""
        if frame.format.name not in ("yuv420p", "yuvj420p"):
            frame = frame.reformat(format="yuv420p")
        regions = YuvRegions(frame)
        if self.tracker is None:
            if self._closed:
                raise EngineError("The library builder was closed.")
            self.tracker = FaceTracker(reference=self.reference)
        return index, frame, regions, self.tracker.track_regions(regions)

    def _record(self, index: int, frame, regions, points) -> None:
        """Stage two: the frame's transform, mouth crop (into the atlas) and measures."""
        import cv2

        while len(self.kept) < index:  # a frame the caller skipped: no face there
            self._append(None, self._identity, 0.0, -1, 0.0, -1)
        if index < len(self.kept):
            return
        if self.colour is None:
            self.colour = colour_matrix(frame)
            self.width, self.height = frame.width, frame.height
        if points is None:
            self._append(None, self._identity, 0.0, -1, 0.0, -1)
            return
        if self.template is None:
            iod0 = float(np.linalg.norm(points[EYE_OUTER[1], :2] - points[EYE_OUTER[0], :2]))
            self.canon_iod = float(np.clip(iod0, CANON_IOD_MIN, CANON_IOD_MAX))
            self.template = _canonical_template(points, self.canon_iod)
            x0, y0 = CROP_X[0] * self.canon_iod, CROP_Y[0] * self.canon_iod
            w = int(round((CROP_X[1] - CROP_X[0]) * self.canon_iod / 2)) * 2
            h = int(round((CROP_Y[1] - CROP_Y[0]) * self.canon_iod / 2)) * 2
            self.crop = (x0, y0, w, h)
            self.atlas_writer = AtlasWriter(self.atlas_path, w, h)
        m = similarity_transform(points[RIGID_INDICES, :2], self.template)
        yaw = landmark_yaw(points)
        atlas, teeth, thumb, cues = -1, 0.0, -1, (math.nan, math.nan)
        if self._in_range(index) and abs(yaw) <= MAX_YAW:
            x0, y0, w, h = self.crop
            to_crop = m.copy()
            to_crop[:, 2] -= (x0, y0)
            crop = warp_planes(regions.planes, to_crop, (w, h))
            atlas = self.atlas_writer.add(crop)
            teeth = _teeth_measure(crop[0], apply_transform(to_crop, points[LIP_INNER, :2]))
            thumb = len(self.thumbs)
            self.thumbs.append(cv2.resize(crop[0], (24, 20), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1))
            cues = mouth_cues(crop, apply_transform(to_crop, points[:, :2]), self.colour)
        self._append(points[KEPT], m, yaw, atlas, teeth, thumb, cues)

    def _append(self, kept, transform, yaw, atlas, teeth, thumb, cues=(math.nan, math.nan)) -> None:
        self.cues.append(cues)
        self.kept.append(kept)
        self.transforms.append(transform)
        self.yaw.append(yaw)
        self.atlas_index.append(atlas)
        self.teeth.append(teeth)
        self.thumb_of.append(thumb)

    def finish(self, out: Path, *, trajectory=None, video: Path | None = None,
               audio: tuple[np.ndarray, int] | None = None, fps: float | None = None) -> PreparationReport:
        """Write the library. The viseme labels and the mouth-state model come from
        ``trajectory`` if given, else from ``audio`` (samples, rate), else from ``video``'s
        own sound track. ``fps`` is the footage's rate when the builder was made without it."""
        if fps is not None and self.fps is None:
            self.fps = float(fps)
            self.first_unit = max(0, int(round(self.start * self.fps)))
            self.last_unit = None if self.end is None else int(round(self.end * self.fps))
        if self.fps is None:
            raise EngineError("The library builder needs the footage's frame rate.")
        n = len(self.kept)
        last_unit = n if self.last_unit is None else min(self.last_unit, n)
        if last_unit - self.first_unit < 2:
            raise InputRejected("The library segment is empty; choose a start and end inside the video.",
                                field="segment", code="segment_empty")
        if self.atlas_writer is not None:
            self.atlas_writer.close()
        if trajectory is None and (audio is not None or video is not None):
            trajectory = own_trajectory(video, audio, self.first_unit / self.fps, last_unit / self.fps, self.fps)
        kept = np.full((n, len(KEPT), 3), np.nan, np.float32)
        for i, value in enumerate(self.kept):
            if value is not None:
                kept[i] = value
        library, report = _assemble(
            n=n, fps=self.fps, width=self.width, height=self.height, kept=kept,
            transforms=np.asarray(self.transforms, np.float32), yaw_abs=np.asarray(self.yaw, np.float32),
            atlas_index=np.asarray(self.atlas_index, np.int32), teeth=np.asarray(self.teeth, np.float32),
            thumbs=self.thumbs, thumb_of=np.asarray(self.thumb_of, np.int32),
            cues=np.asarray(self.cues, np.float32).reshape(-1, 2), canon_iod=self.canon_iod,
            crop=self.crop, first_unit=self.first_unit, last_unit=last_unit, trajectory=trajectory,
            colour=self.colour, atlas=self.atlas_path.read_bytes() if self.atlas_writer is not None else b"",
        )
        library.save(Path(out))
        return report

    # -- on a worker thread ------------------------------------------------------------------
    def start_worker(self, depth: int = 8) -> None:
        """Work on two threads from now on, a pipeline: one tracks (FaceMesh), the other
        records (crop, atlas encode, measures); ``submit`` queues frames (at most ``depth``
        waiting at each stage), ``join`` waits for the last one. FaceMesh, OpenCV and the
        encoder release the GIL, so both stages and whatever feeds the frames (the
        normaliser's decoder) run side by side on the cores."""
        import queue

        # Frames waiting for FaceMesh are counted rather than capped by the queue, so ``submit``
        # can wait with a timeout and still see a stage's error.
        self._queue: queue.Queue = queue.Queue()
        self._tracked: queue.Queue = queue.Queue(maxsize=depth)
        self._waiting = threading.Condition()
        self._pending, self._depth = 0, depth
        self._error: BaseException | None = None
        self._stopping = threading.Event()

        def stage(source: queue.Queue, step: Callable, sink: queue.Queue | None) -> Callable[[], None]:
            def work() -> None:
                if source is self._queue and self.tracker is None and not self._closed:
                    try:
                        self.tracker = FaceTracker(reference=self.reference)  # loads while frames arrive
                    except BaseException as exc:  # reported by submit/join
                        self._error = exc
                while True:
                    item = source.get()
                    if source is self._queue:
                        with self._waiting:
                            self._pending -= 1
                            self._waiting.notify_all()
                    if item is None:
                        break
                    if self._error is None and not self._stopping.is_set():
                        try:
                            result = step(*item)
                            if sink is not None:
                                sink.put(result)
                        except BaseException as exc:  # reported by submit/join
                            self._error = exc
                if sink is not None:
                    sink.put(None)
            return work

        self._workers = [
            threading.Thread(target=stage(self._queue, self._track, self._tracked), name="tracking", daemon=True),
            threading.Thread(target=stage(self._tracked, self._record, None), name="recording", daemon=True),
        ]
        for worker in self._workers:
            worker.start()

    # Frames that may queue while FaceMesh loads (~1 s): at most this much memory (87 frames of
    # 720p, 40 of 1080p), so the decoder and encoder are not held up meanwhile.
    LOADING_BYTES = 128 << 20

    def _room(self, frame) -> int:
        """How many frames may wait for FaceMesh before ``submit`` waits."""
        if self.tracker is not None:
            return self._depth
        return max(self._depth, self.LOADING_BYTES // max(1, frame.width * frame.height * 3 // 2))

    def submit(self, index: int, frame) -> None:
        with self._waiting:
            while self._error is None and self._pending >= self._room(frame):
                self._waiting.wait(timeout=0.1)
            if self._error is not None:
                raise self._error
            self._pending += 1
        self._queue.put((index, frame))

    def join(self) -> None:
        workers = getattr(self, "_workers", None)
        if not workers:
            return
        with self._waiting:
            self._pending += 1
        self._queue.put(None)
        for worker in workers:
            worker.join()
        self._workers = []
        if self._error is not None:
            raise self._error

    def _stop_worker(self) -> None:
        workers = getattr(self, "_workers", None)
        if workers and any(worker.is_alive() for worker in workers):
            import queue

            self._stopping.set()  # the stages skip what is left
            for pending in (self._queue, self._tracked):
                while True:
                    try:
                        pending.get_nowait()
                    except queue.Empty:
                        break
            with self._waiting:
                self._pending = 1
                self._waiting.notify_all()
            self._queue.put(None)
            for worker in workers:
                worker.join()
        self._workers = []

    def close(self) -> None:
        """Release the tracker and the temporary atlas (safe to call more than once)."""
        self._stop_worker()
        self._closed = True
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        if self.atlas_writer is not None:
            self.atlas_writer.abort()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "LibraryBuilder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_library(
    video: Path,
    out: Path,
    *,
    start: float = 0.0,
    end: float | None = None,
    audio: tuple[np.ndarray, int] | None = None,
    reference: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> PreparationReport:
    """Track every frame of ``video`` and write the mouth library to ``out`` (``.npz``).

    Every frame gets its transform and landmarks (renders reuse them for the background
    frames and never run FaceMesh); only frames in ``[start, end)`` seconds become units the
    renderer may pick. ``audio`` (samples, rate) overrides the video's own sound track for
    the viseme labels and the mouth-state model. ``reference`` (an RGB photo) picks the
    person when several faces are in view. ``progress("tracking", fraction)`` and
    ``should_cancel()`` are called as frames go by. Returns the preparation report.
    """
    started = time.monotonic()
    video = Path(video)
    tick = StageTicker(progress, should_cancel, stage="tracking", message="Preparation was cancelled.")
    tick(0.0, force=True)
    with media.VideoReader(video) as reader:
        if reader.rotation:
            raise EngineError("Normalise the video (rotation applied) before building its mouth library.")
        n = reader.frame_count
        first = int(round(start * reader.fps))
        last = n if end is None else min(n, int(round(end * reader.fps)))
        if last - first < 2 or first >= n:
            raise InputRejected("The library segment is empty; choose a start and end inside the video.",
                                field="segment", code="segment_empty")
        own: dict = {}
        # The footage's own speech → trajectory, on the second core while this one tracks.
        worker = threading.Thread(
            target=_safe_own_trajectory, args=(video, audio, first / reader.fps, last / reader.fps, reader.fps, own),
            daemon=True,
        )
        worker.start()
        with LibraryBuilder(fps=reader.fps, start=start, end=end, reference=reference) as builder:
            try:
                with single_threaded_cv2():
                    for index, frame in reader.iter_sequential():
                        if index >= n:
                            break
                        builder.add(index, frame)
                        tick(0.9 * (index + 1) / n)
            finally:
                worker.join()
            if "error" in own:
                raise own["error"]
            report = builder.finish(Path(out), trajectory=own.get("trajectory"))
    tick(1.0, force=True)
    report.seconds = time.monotonic() - started
    return report


def _safe_own_trajectory(video, audio, start, end, fps, sink: dict) -> None:
    try:
        sink["trajectory"] = own_trajectory(video, audio, start, end, fps)
    except BaseException as exc:  # handed to the main thread
        sink["error"] = exc


def _assemble(*, n, fps, width, height, kept, transforms, yaw_abs, atlas_index, teeth, thumbs, thumb_of, cues,
              canon_iod, crop, first_unit, last_unit, trajectory, colour,
              atlas) -> tuple[Library, PreparationReport]:
    tracked = ~np.isnan(kept[:, 0, 0])
    if canon_iod is None or not tracked.any():
        raise InputRejected(
            "We couldn't follow a face in this video; record your face, well lit and facing the camera.",
            field="source", code="no_face_tracked",
        )
    crop_x0, crop_y0, crop_w, crop_h = crop
    points = np.zeros((n, len(KEPT), 2), np.float32)
    for i in np.flatnonzero(tracked):
        points[i] = apply_transform(transforms[i], kept[i, :, :2])

    # Head pose relative to the footage's median face (Kabsch on the rigid points in 3-D).
    rigid3 = kept[:, K_RIGID, :]
    seen = rigid3[tracked]
    mean_shape = np.median(seen - seen.mean(axis=1, keepdims=True), axis=0)
    pose = np.zeros((n, 3), np.float32)
    for i in np.flatnonzero(tracked):
        shape = rigid3[i] - rigid3[i].mean(axis=0)
        scale = np.sqrt((shape[:, :2] ** 2).sum() / max((mean_shape[:, :2] ** 2).sum(), 1e-9))
        pose[i] = _euler(_kabsch_rotation(mean_shape, shape / max(scale, 1e-9)))

    state = measure_state(points, canon_iod)
    units = (atlas_index >= 0) & tracked
    in_range = np.zeros(n, bool)
    in_range[first_unit:last_unit] = True

    # Appearance code: PCA of small canonical mouth thumbnails; an outlier (hand, mic, food
    # in front of the mouth) reconstructs badly and is marked occluded.
    appearance = np.zeros((n, 16), np.float32)
    occluded = np.zeros(n, bool)
    unusual = np.zeros(n, bool)
    if thumbs:
        thumb_matrix = np.stack(thumbs)
        mean = thumb_matrix.mean(axis=0)
        centred = thumb_matrix - mean
        k = min(16, len(thumbs) - 1) if len(thumbs) > 1 else 0
        if k > 0:
            _, singular, vt = np.linalg.svd(centred[:: max(1, len(thumbs) // 1500)], full_matrices=False)
            basis = vt[:k]
            codes = centred @ basis.T
            scale = singular[0] / math.sqrt(max(1, len(centred[:: max(1, len(thumbs) // 1500)])))
            residual = np.linalg.norm(centred - codes @ basis, axis=1)
            med = np.median(residual)
            mad = np.median(np.abs(residual - med)) + 1e-6
            z = (residual - med) / (1.4826 * mad)
            rows = np.flatnonzero(thumb_of >= 0)
            appearance[rows, :k] = codes[thumb_of[rows]] / max(scale, 1e-6)
            # Far out: something covers the mouth, leave the frame alone. Merely unusual (a
            # rare mouth shape, a glitch): keep it as a background, but not as a unit.
            occluded[rows] = z[thumb_of[rows]] > OCCLUDED_Z
            unusual[rows] = z[thumb_of[rows]] > UNUSUAL_Z
    # A cover the footage shows often (a headset microphone) is learnt by the PCA and passes it:
    # lips that look like the skin round them, frame by frame, catch it however often it is there.
    measured = np.isfinite(cues).all(axis=1)
    covered = covered_frames(cues, measured)
    occluded |= covered
    frontal = np.abs(yaw_abs) <= MAX_YAW
    ok = tracked & frontal & ~occluded
    usable = ok & units & in_range & ~unusual

    teeth_all = teeth
    params = trajectory_params(state, teeth_all, usable)

    # Visemes heard at each unit frame, and the mouth-state model.
    visemes = np.full(n, -1, np.int8)
    model: dict[str, np.ndarray] = {}
    offset_ms = 0.0
    own_speech_r = math.nan
    if trajectory is not None:
        offset_ms, own_speech_r = _av_offset(trajectory, state[first_unit:last_unit, 0],
                                             usable[first_unit:last_unit], fps)
        if not own_speech_r >= OWN_SPEECH_MIN_R:
            # Music, a narrator, a room's noise: a sound that does not move with this mouth
            # teaches nothing about when it opens. Nothing is learnt from it; renders use the
            # speaker-independent mouth, calibrated on all of the footage's frames.
            trajectory, offset_ms = None, 0.0
    if trajectory is not None:
        labels = list(trajectory.visemes[: last_unit - first_unit])
        for j, label in enumerate(labels):
            visemes[first_unit + j] = VISEME_ORDER.index(label) if label in VISEME_ORDER else -1
        rows = np.flatnonzero(usable[first_unit:last_unit])
        if len(rows) >= MIN_MODEL_FRAMES:
            model = fit_model(model_inputs(trajectory, last_unit - first_unit), state[first_unit:last_unit], rows)
            if trajectory.voice_signature is not None:
                # What the model heard: it is trusted only for voices that sound like this.
                model["voice_signature"] = trajectory.voice_signature

    usable_count = int(usable.sum())
    coverage = {name: int(((visemes == i) & usable).sum()) for i, name in enumerate(VISEME_ORDER)}
    # "open" is relative to the speaker's own resting mouth (some rest with lips apart)
    rest = float(np.percentile(state[usable, 0], 10)) if usable.any() else 0.0
    open_frames = int((usable & (state[:, 0] >= max(OPEN_APERTURE, rest + 0.08))).sum())
    closed_frames = int((usable & (state[:, 0] <= CLOSED_APERTURE)).sum())
    good = ok & tracked
    head = {"yaw_range": 0.0, "pitch_range": 0.0, "roll_range": 0.0, "shift_range": 0.0, "scale_range": 0.0}
    if good.sum() >= 2:
        lo, hi = np.percentile(pose[good], [5, 95], axis=0)
        head["yaw_range"], head["pitch_range"], head["roll_range"] = (hi - lo).tolist()
        inverse = np.array([invert_transform(t) for t in transforms[good]])
        centres = inverse[:, :, 2]  # where the canonical origin (eye midpoint) sits in the frame
        scales = np.hypot(inverse[:, 0, 0], inverse[:, 1, 0])
        iod_px = canon_iod * np.median(scales)
        spread = np.percentile(centres, 95, axis=0) - np.percentile(centres, 5, axis=0)
        head["shift_range"] = float(np.hypot(*spread) / max(iod_px, 1e-6))
        head["scale_range"] = float((np.percentile(scales, 95) - np.percentile(scales, 5)) / np.median(scales))

    unit_total = int((in_range[:n]).sum())
    warnings: list[str] = []
    if usable_count < 0.5 * max(unit_total, 1):
        warnings.append(
            f"Only {usable_count} of {unit_total} frames show your face clearly enough to use: keep your face "
            "in view, facing the camera, with nothing in front of your mouth."
        )
    covered_share = float(occluded[measured & in_range].mean()) if (measured & in_range).any() else 0.0
    if covered_share >= COVERED_WARN_SHARE:
        advice = "Record with the microphone below your chin and nothing in front of your mouth."
        if usable_count == 0:
            raise InputRejected(
                f"Something covers your mouth in {round(100 * covered_share)} % of the video (a microphone, a "
                f"hand), so lip sync has no frame of your lips to learn from. {advice}",
                field="source", code="mouth_covered")
        warnings.append(
            f"Something covers your mouth in {round(100 * covered_share)} % of the video (a microphone, a hand): "
            f"lip sync cannot use those frames and skips them. {advice}")
    if open_frames < max(12, 0.04 * usable_count):
        warnings.append("Few open-mouth frames: record yourself reading aloud for at least 30 s.")
    if closed_frames < max(6, 0.01 * usable_count):
        warnings.append("Few closed-mouth frames: include pauses and words with p, b and m (\"maybe\", \"happy\").")
    if trajectory is None:
        heard = ("The video has no speech we could hear" if not math.isfinite(own_speech_r) else
                 "The video's sound does not move with your mouth (music, or someone else speaking)")
        warnings.append(
            f"{heard}, so lip sync uses the speaker-independent mouth: it opens and closes with each voice's "
            "own sounds and loudness, as wide as your mouth opens in this video. Footage of you speaking "
            "makes it more like you."
        )
    if head["yaw_range"] > 25 or head["pitch_range"] > 20 or head["shift_range"] > 1.0:
        warnings.append("Your head moves a lot in this video: keep it steadier for cleaner lip sync.")

    meta = {
        "version": LIBRARY_VERSION,
        "fps": fps,
        "width": width,
        "height": height,
        "frame_count": n,
        "first_unit": first_unit,
        "last_unit": last_unit,
        "canon_iod": canon_iod,
        "crop_x0": crop_x0,
        "crop_y0": crop_y0,
        "crop_width": crop_w,
        "crop_height": crop_h,
        "colour_matrix": colour,
        "av_offset_ms": offset_ms,
        "closed_threshold": CLOSED_APERTURE,
        "state_mean": state[usable].mean(axis=0).tolist() if usable.any() else [0.05, 0.6, 0.3, 0.9],
        "state_std": (state[usable].std(axis=0) + 1e-3).tolist() if usable.any() else [0.05, 0.05, 0.05, 0.05],
    }
    library = Library(
        meta=meta, ok=ok, usable=usable, transform=transforms, points=points, pose=pose, state=state, params=params,
        appearance=appearance, visemes=visemes, atlas_index=atlas_index, atlas=atlas, model=model,
    )
    report = PreparationReport(
        total_frames=n, usable_frames=usable_count, viseme_coverage=coverage, head_motion=head, warnings=warnings,
        open_frames=open_frames, closed_frames=closed_frames, av_offset_ms=offset_ms,
        mouth_timing=_mouth_timing(trajectory, model),
        own_speech_r=own_speech_r,
    )
    return library, report


def _mouth_timing(trajectory, model) -> str:
    if trajectory is None:
        return "speaker-independent"
    # Cross-validation on the footage found its loudness a better guide than the full model:
    # renders of this voice follow loudness, and the report says so for whoever wonders why.
    return "own speech, loudness" if model and uses_loudness_model(model) else "own speech"


# A cover over this share of the footage is worth a sentence (a few frames of a hand passing
# are not).
COVERED_WARN_SHARE = 0.15

# The footage's sound is its own speech when its loudness-shaped jaw and the measured mouth
# opening correlate at least this well at their best lag (own speech: 0.4–0.8 on every clip we
# have; silence, music or another voice over the same frames: under 0.2).
OWN_SPEECH_MIN_R = 0.25


def _av_offset(trajectory, aperture: np.ndarray, usable: np.ndarray, fps: float) -> tuple[float, float]:
    """(milliseconds by which the footage's sound follows its mouth, the r at that lag): the
    best-correlating lag of the sound's jaw and the mouth's opening (r NaN: too few frames)."""
    jaw = np.asarray(trajectory.jaw, np.float32)
    n = min(len(jaw), len(aperture))
    best, best_lag = -2.0, 0
    for lag in range(-int(0.2 * fps), int(0.3 * fps) + 1):
        a_idx = np.arange(max(0, -lag), min(n, n - lag))
        j_idx = a_idx + lag
        keep = usable[a_idx]
        if keep.sum() < 20:
            continue
        x, y = jaw[j_idx][keep], aperture[a_idx][keep]
        if x.std() < 1e-6 or y.std() < 1e-6:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        if r > best:
            best, best_lag = r, lag
    return 1000.0 * best_lag / fps, (best if best > -2.0 else math.nan)
