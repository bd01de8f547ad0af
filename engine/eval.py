"""Lip-sync quality, measured by self-reenactment on held-out real footage.

``evaluate(video, split=20.0, out=DIR)`` builds the mouth library from the first ``split``
seconds of a real talking video, renders the rest of the video's *own* audio onto the rest
of its *own* frames (background index k = the held-out frame k), and compares the rendered
frames with the real ones. Because the person really said those words in those frames, the
real footage is the ground truth for every figure:

1. **aperture r** — Pearson correlation of the inner-lip gap (÷ inter-ocular distance) of
   the rendered frames with the real ones.
2. **lip landmark distance** — FaceMesh's 40 lip points, each frame brought into one
   canonical face frame by a similarity transform fitted on rigid points (eye corners, nose
   ridge, forehead, temples) and scaled so the inter-ocular distance is 1; the mean point
   distance to the real frame's lips. Compared with two baselines built from the *library
   part* of the same footage: a **static mouth** (the library's median mouth shape in every
   frame) and **loudness only** (per frame, the library frame whose aperture sits at the
   same quantile as the held-out frame's loudness does among the library's loudness).
3. **P/B/M closed** — share of the held-out audio's P, B, M phones (PocketSphinx timings, as
   the renderer gets them) with at least one rendered frame within ±40 ms whose aperture is
   under the *closed threshold*: the real footage's closed level (2nd percentile of its
   aperture) plus 15 % of its range (to the 98th percentile), and at least 0.02 above it.
   The same share for the real frames says how far the phone timings can be trusted.
4. **audio-visual offset** — the lag (frames, ±5) maximising the correlation of aperture
   with the speech envelope (RMS per frame), for the rendered and for the real frames;
   positive = the mouth follows the sound. The figure is their difference.
5. **PSNR outside the mouth** — rendered vs. the decoded background frame, over the pixels
   outside ``RenderedFrame.mouth_mask`` (> 0) dilated by 10 px; pooled MSE over all frames
   (frames the renderer left untouched count as identical). Measured *before* encoding.
6. **jitter** — mean norm of the lips' frame-to-frame second difference (canonical
   coordinates), rendered ÷ real.

Outputs in ``out``: ``eval.json`` (figures, baselines, pass/fail against DESIGN.md's
targets), ``contact_sheet.png`` (real over rendered mouth crops, labelled with time and
viseme), ``aperture.png`` (aperture over time: real, rendered, baselines, envelope, P/B/M)
and, unless ``video=False``, ``compare.mp4`` (real | rendered, with the held-out audio).

The metric functions (``pearson``, ``psnr``, ``best_lag``, ``similarity_transform``, …) are
plain numpy and tested on known inputs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import media
from .errors import InputRejected

# ----------------------------------------------------------------------------- targets

TARGETS = {
    "aperture_r": (">=", 0.6),
    "lip_distance_ratio": ("<=", 0.6),
    "pbm_closed_share": (">=", 0.9),
    "av_offset_difference": ("abs<=", 1),
    "psnr_outside_mouth_db": (">=", 40.0),
}
PSNR_CAP_DB = 100.0  # identical pixels: reported as the cap (JSON has no infinity)
MAX_LAG_FRAMES = 5
PBM_TOLERANCE_S = 0.040
PBM_PHONES = frozenset({"P", "B", "M"})
MASK_DILATION_PX = 10
SHEET_CELLS = 24

# FaceMesh points that do not move with the mouth or jaw: eye corners, nose ridge and tip,
# forehead, temples.
RIGID_INDICES = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 127, 356])
EYE_OUTER = (33, 263)
LIP_CORNERS = (61, 291)


# ----------------------------------------------------------------------------- metrics


def pearson(a: Iterable[float], b: Iterable[float]) -> float:
    """Pearson r over the pairs where both are finite; NaN if either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denominator = math.sqrt(float((a * a).sum() * (b * b).sum()))
    if denominator < 1e-12:
        return math.nan
    return float((a * b).sum() / denominator)


def lagged_correlation(signal: np.ndarray, reference: np.ndarray, lag: int) -> float:
    """r of ``signal[t + lag]`` with ``reference[t]`` (positive lag: the signal comes later)."""
    signal, reference = np.asarray(signal, np.float64), np.asarray(reference, np.float64)
    n = min(len(signal), len(reference))
    if lag >= 0:
        return pearson(signal[lag:n], reference[: n - lag])
    return pearson(signal[: n + lag], reference[-lag:n])


def best_lag(signal, reference, max_lag: int = MAX_LAG_FRAMES) -> tuple[int | None, float]:
    """The lag in [-max_lag, max_lag] maximising ``lagged_correlation``, and that r.

    Ties go to the smallest |lag|. ``(None, nan)`` when no lag gives a defined r.
    """
    best: tuple[int | None, float] = (None, -math.inf)
    for lag in sorted(range(-max_lag, max_lag + 1), key=lambda v: (abs(v), v)):
        r = lagged_correlation(signal, reference, lag)
        if math.isfinite(r) and r > best[1] + 1e-12:
            best = (lag, r)
    return best if best[0] is not None else (None, math.nan)


def psnr_from_mse(mse: float, peak: float = 255.0, cap: float = PSNR_CAP_DB) -> float:
    if mse <= 0:
        return cap
    return float(min(cap, 10.0 * math.log10(peak * peak / mse)))


def squared_error(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, int]:
    """(sum of squared differences, number of values) over the pixels where ``keep`` is true."""
    diff = a.astype(np.float32) - b.astype(np.float32)
    if keep is not None:
        diff = diff[keep]
    return float(np.square(diff, dtype=np.float64).sum() if diff.size else 0.0), int(diff.size)


def psnr(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images over ``keep`` (HxW bool); identical → the cap."""
    total, count = squared_error(a, b, keep)
    return psnr_from_mse(total / count if count else 0.0)


def dilated_mask(mask: np.ndarray | None, radius: int = MASK_DILATION_PX, shape=None) -> np.ndarray:
    """Bool HxW: pixels where ``mask`` > 0, grown by ``radius`` px (a disc); all False for None."""
    if mask is None:
        return np.zeros(shape[:2], dtype=bool)
    import cv2

    touched = (np.asarray(mask) > 1e-3).astype(np.uint8)
    if radius > 0 and touched.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        touched = cv2.dilate(touched, kernel)
    return touched.astype(bool)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src → dst.

    Umeyama's method; returns ``(A, t)`` with ``dst ≈ src @ A.T + t``.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    covariance = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (s * s).sum() / len(src)
    scale = float((sigma * np.diag(sign)).sum() / variance) if variance > 0 else 1.0
    a = scale * rotation
    return a, mu_d - mu_s @ a.T


def apply_transform(points: np.ndarray, transform: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    a, t = transform
    return np.asarray(points, np.float64) @ a.T + t


def second_difference_jitter(sequence: np.ndarray) -> float:
    """Mean norm of x[t+1] − 2x[t] + x[t−1] over points and the triples with no gap (NaN)."""
    x = np.asarray(sequence, np.float64)  # frames × points × 2
    if len(x) < 3:
        return math.nan
    acc = x[2:] - 2 * x[1:-1] + x[:-2]
    norms = np.linalg.norm(acc, axis=-1).mean(axis=-1)
    norms = norms[np.isfinite(norms)]
    return float(norms.mean()) if norms.size else math.nan


def closed_threshold(apertures: np.ndarray) -> tuple[float, float, float]:
    """(threshold, closed level, open level) from a real footage's aperture distribution."""
    values = np.asarray(apertures, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan, math.nan
    closed, opened = np.percentile(values, [2, 98])
    return float(closed + max(0.15 * (opened - closed), 0.02)), float(closed), float(opened)


def closure_runs(apertures: np.ndarray, threshold: float) -> int:
    """Number of separate runs of frames whose aperture is under ``threshold``."""
    below = np.asarray(apertures, np.float64) < threshold  # NaN (no face) counts as open
    return int(below[0]) + int((below[1:] & ~below[:-1]).sum()) if below.size else 0


@dataclass
class ClosureCheck:
    start: float
    end: float
    phone: str
    closed: bool | None  # None: no frame with a face inside the window
    min_aperture: float


def closure_checks(
    events, apertures: np.ndarray, fps: float, threshold: float, tolerance: float = PBM_TOLERANCE_S
) -> list[ClosureCheck]:
    """For each P/B/M event: is some frame within ±tolerance of it under ``threshold``?"""
    apertures = np.asarray(apertures, np.float64)
    times = np.arange(len(apertures)) / fps
    checks = []
    for event in events:
        if event.phoneme.upper() not in PBM_PHONES:
            continue
        inside = (times >= event.start - tolerance - 1e-9) & (times <= event.end + tolerance + 1e-9)
        values = apertures[inside]
        values = values[np.isfinite(values)]
        if values.size == 0:
            checks.append(ClosureCheck(event.start, event.end, event.phoneme, None, math.nan))
            continue
        low = float(values.min())
        checks.append(ClosureCheck(event.start, event.end, event.phoneme, low < threshold, low))
    return checks


def closed_share(checks: list[ClosureCheck]) -> float:
    judged = [c.closed for c in checks if c.closed is not None]
    return float(np.mean(judged)) if judged else math.nan


# ----------------------------------------------------------------------------- landmarks


def _face():
    from . import face

    return face


def lip_indices() -> np.ndarray:
    return np.asarray(_face().LIP_INDICES)


def aperture_of(landmarks: np.ndarray | None) -> float:
    return math.nan if landmarks is None else float(_face().mouth_aperture(landmarks))


def inter_ocular_of(landmarks: np.ndarray) -> float:
    return float(_face().inter_ocular(landmarks))


class Canonical:
    """Maps landmarks into one face frame: rigid points fitted to a reference, io = 1."""

    def __init__(self, reference: np.ndarray):
        rigid = np.asarray(reference, np.float64)[RIGID_INDICES]
        scale = inter_ocular_of(reference)
        self.reference = (rigid - rigid.mean(0)) / max(scale, 1e-6)

    def __call__(self, landmarks: np.ndarray | None) -> np.ndarray | None:
        if landmarks is None:
            return None
        transform = similarity_transform(np.asarray(landmarks)[RIGID_INDICES], self.reference)
        return apply_transform(landmarks, transform)


def lip_distance(a: np.ndarray | None, b: np.ndarray | None, lips: np.ndarray) -> float:
    """Mean distance between two canonical landmark sets' lip points (io units)."""
    if a is None or b is None:
        return math.nan
    return float(np.linalg.norm(a[lips] - b[lips], axis=-1).mean())


# ----------------------------------------------------------------------------- evaluation


@dataclass
class Figures:
    """Per-frame series for the held-out part, and what they were measured against."""

    fps: float
    real_aperture: list[float] = field(default_factory=list)
    rendered_aperture: list[float] = field(default_factory=list)
    real_canonical: list[np.ndarray | None] = field(default_factory=list)
    rendered_canonical: list[np.ndarray | None] = field(default_factory=list)
    squared_error: float = 0.0
    compared_values: int = 0
    frame_psnr: list[float] = field(default_factory=list)
    touched_frames: int = 0


def _json_number(value, digits: int = 4):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _judge(name: str, value) -> bool | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    op, target = TARGETS[name]
    if op == ">=":
        return bool(value >= target)
    if op == "<=":
        return bool(value <= target)
    return bool(abs(value) <= target)


def _target_text(name: str) -> str:
    op, target = TARGETS[name]
    return f"|x| <= {target}" if op == "abs<=" else f"{op} {target}"


def _sequential_rgb(reader: media.VideoReader) -> Callable[[int], np.ndarray]:
    """RGB of frame ``index``, for indices that mostly increase (decodes forward)."""

    def get(index: int) -> np.ndarray:
        return reader.rgb(reader.frame_at(index))

    return get


def _renderer():
    """The module that builds libraries and synthesises frames (tests may stand in for it)."""
    from . import video_avatar

    return video_avatar


ProgressFn = Callable[[str, float], None]


def evaluate(
    video: str | Path,
    *,
    split: float = 20.0,
    out: str | Path,
    end: float | None = None,
    write_video: bool = True,
    progress: ProgressFn | None = None,
) -> dict:
    """Self-reenactment: library from [0, split), render [split, end) with its own audio.

    Returns the figures (also written to ``out/eval.json``).
    """
    from . import speech, visemes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    # 1. normalised footage (constant frame rate, BT.709, even size: what renders read)
    normalised = out / "media.mp4"
    media.normalise_video(video, normalised, progress, max_long_side=1920, stage="normalising")
    timings["normalise_s"] = time.perf_counter() - clock
    with media.VideoReader(normalised) as reader:
        fps, n_frames, width, height = reader.fps, reader.frame_count, reader.width, reader.height
    split_frame = int(round(split * fps))
    last_frame = n_frames if end is None else min(n_frames, int(round(end * fps)))
    if split_frame < 2 * fps:
        raise InputRejected(f"Split at {split:g} s leaves under 2 s of footage for the library.",
                            field="split")
    if last_frame - split_frame < 2 * fps:
        raise InputRejected(
            f"The video is {n_frames / fps:.1f} s long; split at {split:g} s leaves under 2 s to evaluate.",
            field="split",
        )

    # 2. the library, from the first part only
    clock = time.perf_counter()
    library = out / "library.npz"
    renderer = _renderer()
    report = renderer.build_library(
        normalised, library, start=0.0, end=split_frame / fps,
        progress=progress,
    )
    timings["build_library_s"] = time.perf_counter() - clock
    report_dict = report.to_dict() if hasattr(report, "to_dict") else dict(report or {})

    # 3. the held-out audio and its trajectory, as a render would get them
    rate = 16000
    audio = speech.load_audio(normalised, sample_rate=rate)
    held = audio[int(round(split_frame / fps * rate)) : int(round(last_frame / fps * rate))]
    clock = time.perf_counter()
    trajectory = visemes.trajectory_from_audio(held, rate, fps)
    timings["trajectory_s"] = time.perf_counter() - clock
    n = min(trajectory.frame_count, last_frame - split_frame)
    envelope = speech.frame_loudness(held, rate, fps)[:n]

    # 4. landmarks of the library part (baselines, thresholds) and the held-out real frames
    clock = time.perf_counter()
    face = _face()
    real_all: list[np.ndarray | None] = []
    tracker = face.FaceTracker()
    try:
        with media.VideoReader(normalised) as reader:
            for index, frame in reader.iter_sequential():
                if index >= last_frame:
                    break
                real_all.append(tracker.track(reader.rgb(frame)))
                if progress is not None and index % 25 == 0:
                    progress("landmarks", index / last_frame)
    finally:
        tracker.close()
    real_all += [None] * (last_frame - len(real_all))
    timings["landmarks_real_s"] = time.perf_counter() - clock
    reference = next((lm for lm in real_all[:split_frame] if lm is not None), None)
    if reference is None:
        raise InputRejected("FaceMesh found no face in the library part of the video.", field="video")
    canonical = Canonical(reference)
    lips = lip_indices()

    # 5. render the held-out part and compare frame by frame (before any encoding)
    clock = time.perf_counter()
    figures = Figures(fps=fps)
    sheet_every = max(1, n // SHEET_CELLS)
    crops: list[dict] = []
    tracker = face.FaceTracker()
    writer = None
    synth_seconds = 0.0
    try:
        if write_video:
            writer = media.VideoWriter(
                out / "compare.mp4", width=2 * width, height=height, fps=fps,
                audio=held[: int(n / fps * rate)], sample_rate=rate,
            )
        with media.VideoReader(normalised) as reader:
            real_rgb = _sequential_rgb(reader)
            frames = renderer.synthesize_frames(
                media=normalised,
                library=library,
                trajectory=trajectory,
                background_indices=range(split_frame, split_frame + n),
            )
            k = 0
            started = time.perf_counter()
            for rendered in frames:
                synth_seconds += time.perf_counter() - started
                if k >= n:
                    break
                # the background frame it was drawn on (``source_index`` is where the mouth came from)
                background = getattr(rendered, "background_index", None)
                real = real_rgb(split_frame + k if background is None else background)
                outside = ~dilated_mask(rendered.mouth_mask, MASK_DILATION_PX, real.shape)
                error, count = squared_error(rendered.rgb, real, outside)
                figures.squared_error += error
                figures.compared_values += count
                figures.frame_psnr.append(psnr_from_mse(error / count if count else 0.0))
                figures.touched_frames += rendered.mouth_mask is not None
                got = tracker.track(rendered.rgb)
                truth = real_all[split_frame + k]
                figures.real_aperture.append(aperture_of(truth))
                figures.rendered_aperture.append(aperture_of(got))
                figures.real_canonical.append(canonical(truth))
                figures.rendered_canonical.append(canonical(got))
                if k % sheet_every == 0 and len(crops) < SHEET_CELLS:
                    crops.append(_mouth_crops(real, rendered.rgb, truth, k / fps + split_frame / fps,
                                              trajectory.visemes[k] if k < len(trajectory.visemes) else ""))
                if writer is not None:
                    writer.write(np.ascontiguousarray(np.concatenate([real, rendered.rgb], axis=1)))
                k += 1
                if progress is not None and k % 10 == 0:
                    progress("rendering", k / n)
                started = time.perf_counter()
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        if writer is not None:
            writer.close()
            writer = None
    finally:
        tracker.close()
        if writer is not None:
            writer.abort()
    n = len(figures.real_aperture)
    if n == 0:
        raise InputRejected("The renderer produced no frames for the held-out part.", field="video")
    timings["render_and_measure_s"] = time.perf_counter() - clock
    timings["synthesize_s"] = synth_seconds
    timings["synthesize_ms_per_frame"] = 1000 * synth_seconds / n

    result = _figures_json(
        figures=figures,
        real_all=real_all,
        split_frame=split_frame,
        canonical=canonical,
        lips=lips,
        audio=audio,
        rate=rate,
        envelope=envelope[:n],
        trajectory=trajectory,
        out=out,
        library_path=library,
    )
    result.update(
        video=str(video),
        split_s=split,
        fps=fps,
        size=[width, height],
        library_frames=split_frame,
        held_out_frames=n,
        library_report=report_dict,
        timings={k: round(v, 3) for k, v in timings.items()},
        files={
            "json": "eval.json",
            "contact_sheet": "contact_sheet.png",
            "aperture_plot": "aperture.png",
            **({"compare_video": "compare.mp4"} if write_video else {}),
        },
    )
    contact_sheet(crops, out / "contact_sheet.png")
    (out / "eval.json").write_text(json.dumps(result, indent=1), "utf-8")
    return result


def _figures_json(*, figures, real_all, split_frame, canonical, lips, audio, rate, envelope, trajectory, out,
                  library_path) -> dict:
    from .speech import frame_loudness

    fps = figures.fps
    n = len(figures.real_aperture)
    real_ap = np.asarray(figures.real_aperture)
    rend_ap = np.asarray(figures.rendered_aperture)

    # library-part statistics (the baselines may only use what the renderer could have used)
    library = [canonical(lm) for lm in real_all[:split_frame]]
    library_ok = [c for c in library if c is not None]
    library_ap = np.asarray([aperture_of(lm) for lm in real_all[:split_frame]])
    all_real_ap = np.asarray([aperture_of(lm) for lm in real_all])
    threshold, closed_level, open_level = closed_threshold(all_real_ap)

    # static baselines: the library's median mouth shape (the best constant guess), and its
    # median *closed* shape (a resting mouth, as a still photo would show), every frame
    median_shape = np.median(np.stack(library_ok), axis=0)
    static_distance = np.array([lip_distance(median_shape, r, lips) for r in figures.real_canonical])
    closed_library = [c for c, a in zip(library, library_ap) if c is not None and a < threshold]
    if not closed_library:
        closed_library = [library[int(np.nanargmin(library_ap))]]
    closed_shape = np.median(np.stack(closed_library), axis=0)
    closed_distance = np.array([lip_distance(closed_shape, r, lips) for r in figures.real_canonical])

    # loudness-only baseline: aperture quantile follows the loudness quantile
    library_loudness = frame_loudness(audio[: int(round(split_frame / fps * rate))], rate, fps)[:split_frame]
    ok = np.isfinite(library_ap[: len(library_loudness)])
    lib_loud, lib_ap = library_loudness[ok], library_ap[: len(library_loudness)][ok]
    lib_shapes = [c for c, good in zip(library[: len(library_loudness)], ok) if good]
    sorted_loud = np.sort(lib_loud)
    quantiles = np.searchsorted(sorted_loud, envelope, side="right") / max(1, len(sorted_loud))
    wanted_ap = np.quantile(lib_ap, np.clip(quantiles, 0, 1))
    chosen = np.abs(lib_ap[None, :] - wanted_ap[:, None]).argmin(axis=1)
    loud_ap = lib_ap[chosen]
    loud_distance = np.array(
        [lip_distance(lib_shapes[j], r, lips) for j, r in zip(chosen, figures.real_canonical)]
    )

    rend_distance = np.array(
        [lip_distance(g, r, lips) for g, r in zip(figures.rendered_canonical, figures.real_canonical)]
    )
    both = np.isfinite(rend_distance) & np.isfinite(static_distance) & np.isfinite(loud_distance)
    rendered_mean = float(rend_distance[both].mean()) if both.any() else math.nan
    static_mean = float(static_distance[both].mean()) if both.any() else math.nan
    loud_mean = float(loud_distance[both].mean()) if both.any() else math.nan
    closed_mean = float(closed_distance[both].mean()) if both.any() else math.nan
    ratio = rendered_mean / static_mean if static_mean and math.isfinite(static_mean) else math.nan

    oracles = selection_oracles(real_all, split_frame, canonical, lips, static_mean)

    aperture_r = pearson(rend_ap, real_ap)
    checks_rendered = closure_checks(trajectory.phonemes, rend_ap, fps, threshold)
    checks_real = closure_checks(trajectory.phonemes, real_ap, fps, threshold)
    share = closed_share(checks_rendered)
    lag_rendered, r_rendered = best_lag(rend_ap, envelope)
    lag_real, r_real = best_lag(real_ap, envelope)
    lag_loud, _ = best_lag(loud_ap, envelope)
    difference = None if lag_rendered is None or lag_real is None else lag_rendered - lag_real
    pooled = figures.squared_error / figures.compared_values if figures.compared_values else 0.0
    psnr_value = psnr_from_mse(pooled)

    def stack(seq):
        return np.stack([s[lips] if s is not None else np.full((len(lips), 2), np.nan) for s in seq])

    jitter_real = second_difference_jitter(stack(figures.real_canonical))
    jitter_rendered = second_difference_jitter(stack(figures.rendered_canonical))
    jitter_ratio = jitter_rendered / jitter_real if jitter_real and math.isfinite(jitter_real) else math.nan

    def entry(name, value, **extra):
        return {"value": _json_number(value), "target": _target_text(name), "pass": _judge(name, value),
                **extra}

    result = {
        "figures": {
            "aperture_r": entry(
                "aperture_r", aperture_r,
                loudness_baseline=_json_number(pearson(loud_ap, real_ap)),
                static_baseline=None,
            ),
            "lip_distance_ratio": entry(
                "lip_distance_ratio", ratio,
                rendered=_json_number(rendered_mean),
                static_baseline=_json_number(static_mean),
                loudness_baseline=_json_number(loud_mean),
                loudness_baseline_ratio=_json_number(loud_mean / static_mean if static_mean else math.nan),
                closed_mouth_baseline=_json_number(closed_mean),
                ratio_to_closed_mouth=_json_number(rendered_mean / closed_mean if closed_mean else math.nan),
                library_closed_frames=len(closed_library),
                frames=int(both.sum()),
                selection_oracles=oracles,
                unit="inter-ocular distances (face.inter_ocular)",
            ),
            "pbm_closed_share": entry(
                "pbm_closed_share", share,
                events=len(checks_rendered),
                closed=int(sum(bool(c.closed) for c in checks_rendered)),
                real_footage=_json_number(closed_share(checks_real)),
                # only the events where the real mouth did close (the phone timing is right)
                on_real_closures=_json_number(closed_share(
                    [c for c, r in zip(checks_rendered, checks_real) if r.closed])),
                threshold=_json_number(threshold),
                real_closed_level=_json_number(closed_level),
                real_open_level=_json_number(open_level),
                tolerance_s=PBM_TOLERANCE_S,
            ),
            "av_offset_difference": entry(
                "av_offset_difference", difference,
                rendered_lag=lag_rendered,
                real_lag=lag_real,
                rendered_r=_json_number(r_rendered),
                real_r=_json_number(r_real),
                loudness_baseline_lag=lag_loud,
                unit="frames; positive = mouth after sound",
            ),
            "psnr_outside_mouth_db": entry(
                "psnr_outside_mouth_db", psnr_value,
                capped=psnr_value >= PSNR_CAP_DB,
                worst_frame_db=_json_number(min(figures.frame_psnr) if figures.frame_psnr else math.nan),
                frames_with_mouth=figures.touched_frames,
                dilation_px=MASK_DILATION_PX,
            ),
            "jitter_ratio": {
                "value": _json_number(jitter_ratio),
                "target": "report only (1 = as steady as the real footage)",
                "pass": None,
                "rendered": _json_number(jitter_rendered, 6),
                "real": _json_number(jitter_real, 6),
            },
        },
        "faces_found": {
            "real": int(np.isfinite(real_ap).sum()),
            "rendered": int(np.isfinite(rend_ap).sum()),
        },
        "pbm_events": [
            {"start": round(c.start, 3), "end": round(c.end, 3), "phone": c.phone, "closed": c.closed,
             "min_aperture": _json_number(c.min_aperture), "real_closed": r.closed,
             "real_min_aperture": _json_number(r.min_aperture),
             "trajectory_closed": _trajectory_closes(trajectory, c, fps)}
            for c, r in zip(checks_rendered, checks_real)
        ],
    }
    result["diagnostics"] = _diagnostics(
        trajectory=trajectory, real_ap=real_ap, rend_ap=rend_ap, fps=fps, library_path=library_path, n=n,
        checks_rendered=checks_rendered, checks_real=checks_real,
    )
    # how often the lips close at all in the held-out part (runs of frames under the threshold)
    result["diagnostics"]["closures_real"] = closure_runs(real_ap, threshold)
    result["diagnostics"]["closures_rendered"] = closure_runs(rend_ap, threshold)
    verdicts = [v["pass"] for v in result["figures"].values() if v["pass"] is not None]
    result["all_targets_met"] = bool(verdicts) and all(verdicts)
    aperture_plot(
        out / "aperture.png",
        fps=fps,
        start=split_frame / fps,
        real=real_ap,
        rendered=rend_ap,
        loudness_baseline=loud_ap,
        static_value=aperture_of_canonical(median_shape),
        envelope=envelope,
        threshold=threshold,
        checks=checks_rendered,
    )
    return result


ORACLE_FEATURE_WEIGHTS = np.array([2.0, 1.0, 1.0, 1.0])  # aperture, width, yaw, pitch (z-scores)


def _oracle_features(landmarks: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Aperture and mouth width (canonical), yaw (degrees) and a pitch proxy (the nose tip's
    height under the eye line, in inter-ocular units, roll removed) of one real frame."""
    eyes = landmarks[list(EYE_OUTER)]
    across = eyes[1] - eyes[0]
    iod = max(float(np.linalg.norm(across)), 1e-6)
    down = np.array([-across[1], across[0]]) / iod
    pitch = float((landmarks[1] - eyes.mean(axis=0)) @ down) / iod
    width = float(np.linalg.norm(shape[LIP_CORNERS[1]] - shape[LIP_CORNERS[0]]))
    return np.array([aperture_of(shape), width, _face().landmark_yaw(landmarks), pitch])


def selection_oracles(real_all, split_frame: int, canonical, lips, static_mean: float) -> dict:
    """What a renderer that shows the library's real mouths unchanged could reach at best.

    For each held-out frame: ``best_frame``, the library frame whose lips are nearest the
    real ones (the floor for any choice of frames); ``state_and_pose``, the library frame
    nearest in the real frame's own aperture, mouth width and head pose (a perfect
    prediction of those, then a perfect choice). Lip distance as a ratio to the static
    baseline, and the aperture r of the frames chosen.
    """
    library = [(lm, canonical(lm)) for lm in real_all[:split_frame] if lm is not None]
    held = [(lm, canonical(lm)) for lm in real_all[split_frame:] if lm is not None]
    if len(library) < 2 or not held or not static_mean:
        return {}
    lib_lips = np.stack([shape[lips] for _, shape in library])
    held_lips = np.stack([shape[lips] for _, shape in held])
    distance = np.concatenate([  # in slices: held × library × 40 points at once can be gigabytes
        np.linalg.norm(part[:, None] - lib_lips[None], axis=-1).mean(axis=-1)
        for part in np.array_split(held_lips, max(1, len(held_lips) // 64))
    ])
    lib_features = np.stack([_oracle_features(lm, shape) for lm, shape in library])
    held_features = np.stack([_oracle_features(lm, shape) for lm, shape in held])
    mean, std = lib_features.mean(axis=0), lib_features.std(axis=0) + 1e-9
    cost = ((((held_features[:, None] - lib_features[None]) / std) ** 2) * ORACLE_FEATURE_WEIGHTS).sum(axis=-1)
    rows = np.arange(len(held))
    out = {}
    for name, chosen in (("best_frame", distance.argmin(axis=1)), ("state_and_pose", cost.argmin(axis=1))):
        out[name] = {
            "lip_distance_ratio": _json_number(float(distance[rows, chosen].mean()) / static_mean),
            "aperture_r": _json_number(pearson(lib_features[chosen, 0], held_features[:, 0])),
        }
    return out


def _trajectory_closes(trajectory, check: ClosureCheck, fps: float) -> bool:
    """Does the driving trajectory itself have a closed-lip frame within the event's window?"""
    closure = np.asarray(trajectory.closure, np.float64)
    times = np.arange(len(closure)) / fps
    inside = (times >= check.start - PBM_TOLERANCE_S - 1e-9) & (times <= check.end + PBM_TOLERANCE_S + 1e-9)
    return bool((closure[inside] >= 0.999).any())


def _diagnostics(*, trajectory, real_ap, rend_ap, fps, library_path, n, checks_rendered, checks_real) -> dict:
    """Where the aperture correlation is lost: audio → trajectory → predicted state → frames.

    ``trajectory_jaw_r``: the driving trajectory's jaw opening against the real aperture (what
    any renderer following the trajectory could reach, roughly); ``predicted_aperture_r``: the
    renderer's own per-speaker prediction (``video_avatar.predict_state``) against the real
    aperture, and ``rendered_vs_predicted_r``: how closely the chosen frames follow it.
    """
    jaw = np.asarray(trajectory.jaw[:n], np.float64)
    open_ = 1.0 - np.asarray(trajectory.closure[:n], np.float64)
    lag, r_lag = best_lag(real_ap, jaw)
    out = {
        "trajectory_jaw_r": _json_number(pearson(jaw, real_ap)),
        "trajectory_jaw_best_lag": lag,
        "trajectory_jaw_best_lag_r": _json_number(r_lag),
        "trajectory_open_r": _json_number(pearson(open_, real_ap)),
        "pbm_trajectory_closed": int(sum(_trajectory_closes(trajectory, c, fps) for c in checks_rendered)),
        "pbm_events": len(checks_rendered),
    }
    try:
        renderer = _renderer()
        predicted = renderer.predict_state(renderer.Library.load(library_path), trajectory)[:n, 0]
    except Exception:  # another renderer (or a stand-in) without this model
        return out
    predicted = np.asarray(predicted, np.float64)
    out["predicted_aperture_r"] = _json_number(pearson(predicted, real_ap[: len(predicted)]))
    out["rendered_vs_predicted_r"] = _json_number(pearson(rend_ap[: len(predicted)], predicted))
    return out


def aperture_of_canonical(shape: np.ndarray) -> float:
    return aperture_of(shape)


# ----------------------------------------------------------------------------- pictures

CROP_PX = 128


def _mouth_crops(real: np.ndarray, rendered: np.ndarray, landmarks: np.ndarray | None, t: float,
                 viseme: str) -> dict:
    import cv2

    h, w = real.shape[:2]
    if landmarks is not None:
        lips = np.asarray(landmarks)[lip_indices()]
        cx, cy = lips.mean(0)
        side = max(24.0, 1.9 * float(np.ptp(lips[:, 0])))
    else:
        cx, cy, side = w / 2, h * 0.7, min(w, h) / 3
    half = side / 2
    x0 = int(round(min(max(cx - half, 0), max(0, w - side))))
    y0 = int(round(min(max(cy - half, 0), max(0, h - side))))
    x1, y1 = min(w, int(round(x0 + side))), min(h, int(round(y0 + side)))

    def crop(rgb):
        region = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        return cv2.resize(region, (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA)

    return {"real": crop(real), "rendered": crop(rendered), "label": f"{t:6.2f}s {viseme}"}


def contact_sheet(cells: list[dict], path: Path, columns: int = 8) -> None:
    """Real (top) over rendered (bottom) mouth crops with time and viseme, in a grid."""
    from PIL import Image, ImageDraw

    if not cells:
        Image.new("RGB", (CROP_PX, CROP_PX), (40, 40, 40)).save(path)
        return
    label_h, gap = 16, 6
    cell_w, cell_h = CROP_PX, label_h + 2 * CROP_PX
    rows = math.ceil(len(cells) / columns)
    cols = min(columns, len(cells))
    header = 18
    size = (cols * (cell_w + gap) + gap, header + rows * (cell_h + gap) + gap)
    sheet = Image.new("RGB", size, (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 3), "each cell: time, viseme / real (top) / rendered (bottom)", fill=(220, 220, 220))
    for i, cell in enumerate(cells):
        x = gap + (i % columns) * (cell_w + gap)
        y = header + gap + (i // columns) * (cell_h + gap)
        draw.text((x + 2, y + 2), cell["label"], fill=(255, 230, 120))
        sheet.paste(Image.fromarray(cell["real"]), (x, y + label_h))
        sheet.paste(Image.fromarray(cell["rendered"]), (x, y + label_h + CROP_PX))
    sheet.save(path)


def aperture_plot(path, *, fps, start, real, rendered, loudness_baseline, static_value, envelope, threshold,
                  checks):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t = start + np.arange(len(real)) / fps
    fig, ax = plt.subplots(figsize=(14, 4.2), dpi=100)
    env = np.asarray(envelope[: len(t)], np.float64)
    if env.size and np.nanmax(env) > 0:
        scale = np.nanpercentile(real, 98) if np.isfinite(real).any() else 1.0
        ax.fill_between(t[: len(env)], 0, env / np.nanmax(env) * scale, color="#cccccc",
                        label="speech envelope (scaled)")
    for check in checks:
        colour = "#98df8a" if check.closed else "#ff9896"
        ax.axvspan(start + check.start, start + check.end, color=colour, alpha=0.5, lw=0)
    ax.plot(t, real, color="black", lw=1.4, label="real")
    ax.plot(t, rendered, color="#d62728", lw=1.2, label="rendered")
    ax.plot(t, loudness_baseline, color="#1f77b4", lw=0.8, alpha=0.7, label="loudness-only baseline")
    if math.isfinite(static_value):
        ax.axhline(static_value, color="#2ca02c", lw=0.8, ls="--", label="static baseline")
    if math.isfinite(threshold):
        ax.axhline(threshold, color="#9467bd", lw=0.8, ls=":", label="closed threshold")
    ax.set_xlabel("time in the video (s); P/B/M phones shaded (green: rendered closed, red: not)")
    ax.set_ylabel("inner-lip gap / inter-ocular")
    ax.set_xlim(t[0], t[-1] if len(t) > 1 else t[0] + 1)
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------- report


def summary_lines(result: dict) -> list[str]:
    f = result["figures"]

    def show(value, fmt="{:.3f}"):
        return "n/a" if value is None else fmt.format(value)

    def verdict(entry):
        return {True: "pass", False: "MISS", None: "-"}[entry["pass"]]

    ld = f["lip_distance_ratio"]
    pbm = f["pbm_closed_share"]
    av = f["av_offset_difference"]
    ps = f["psnr_outside_mouth_db"]
    ap = f["aperture_r"]
    ji = f["jitter_ratio"]
    rows = [
        ("aperture r vs real", show(ap["value"]), ap["target"], verdict(ap),
         f"loudness-only baseline r = {show(ap['loudness_baseline'])}"),
        ("lip distance ÷ static", show(ld["value"]), ld["target"], verdict(ld),
         f"rendered {show(ld['rendered'])}, static median {show(ld['static_baseline'])}, "
         f"static closed {show(ld['closed_mouth_baseline'])}, loudness {show(ld['loudness_baseline'])} (io); "
         f"library frames chosen knowing the real mouth and pose: "
         f"{show(ld.get('selection_oracles', {}).get('state_and_pose', {}).get('lip_distance_ratio'))}"),
        ("P/B/M closed ±40 ms", show(pbm["value"], "{:.0%}"), pbm["target"], verdict(pbm),
         f"{pbm['closed']}/{pbm['events']} events; real footage {show(pbm['real_footage'], '{:.0%}')}; "
         f"where the real lips closed {show(pbm['on_real_closures'], '{:.0%}')}"),
        ("A/V offset difference", show(av["value"], "{:+d}"), av["target"], verdict(av),
         f"rendered lag {av['rendered_lag']}, real lag {av['real_lag']} frames"),
        ("PSNR outside mouth", show(ps["value"], "{:.1f} dB"), ps["target"], verdict(ps),
         f"worst frame {show(ps['worst_frame_db'], '{:.1f}')} dB"
         + (" (capped: identical)" if ps["capped"] else "")),
        ("lip jitter ÷ real", show(ji["value"], "{:.2f}"), "report", "-",
         f"rendered {show(ji['rendered'], '{:.4f}')}, real {show(ji['real'], '{:.4f}')}"),
    ]
    lines = [f"{'figure':24} {'value':>9}  {'target':>10}  {'':4}  notes"]
    lines += [f"{a:24} {b:>9}  {c:>10}  {d:4}  {e}" for a, b, c, d, e in rows]
    return lines


__all__ = [
    "Canonical",
    "TARGETS",
    "best_lag",
    "closed_share",
    "closed_threshold",
    "closure_checks",
    "closure_runs",
    "contact_sheet",
    "dilated_mask",
    "evaluate",
    "lagged_correlation",
    "pearson",
    "psnr",
    "psnr_from_mse",
    "second_difference_jitter",
    "similarity_transform",
    "summary_lines",
]
