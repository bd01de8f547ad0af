"""``evaluate``: self-reenactment on held-out real footage, and the figures' JSON.

See the package docstring for what is measured; ``selection_oracles`` and the diagnostics
say where the figures are lost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import face, media
from ..errors import InputRejected
from .metrics import (
    MASK_DILATION_PX,
    PBM_TOLERANCE_S,
    PSNR_CAP_DB,
    Canonical,
    ClosureCheck,
    aperture_of,
    best_lag,
    closed_share,
    closed_threshold,
    closure_checks,
    closure_runs,
    dilated_mask,
    lip_distance,
    lip_indices,
    pearson,
    psnr_from_mse,
    second_difference_jitter,
    squared_error,
)
from .plots import aperture_plot, contact_sheet, mouth_crops
from .report import json_number, judge, target_text

SHEET_CELLS = 24
LIP_CORNERS = (61, 291)


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


def _sequential_rgb(reader: media.VideoReader) -> Callable[[int], np.ndarray]:
    """RGB of frame ``index``, for indices that mostly increase (decodes forward)."""

    def get(index: int) -> np.ndarray:
        return reader.rgb(reader.frame_at(index))

    return get


def _renderer():
    """The module that builds libraries and synthesises frames (tests may stand in for it)."""
    from .. import lipsync

    return lipsync


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
    from .. import speech, visemes

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
                    crops.append(mouth_crops(real, rendered.rgb, truth, k / fps + split_frame / fps,
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
    from ..speech import frame_loudness

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
        return {"value": json_number(value), "target": target_text(name), "pass": judge(name, value),
                **extra}

    result = {
        "figures": {
            "aperture_r": entry(
                "aperture_r", aperture_r,
                loudness_baseline=json_number(pearson(loud_ap, real_ap)),
                static_baseline=None,
            ),
            "lip_distance_ratio": entry(
                "lip_distance_ratio", ratio,
                rendered=json_number(rendered_mean),
                static_baseline=json_number(static_mean),
                loudness_baseline=json_number(loud_mean),
                loudness_baseline_ratio=json_number(loud_mean / static_mean if static_mean else math.nan),
                closed_mouth_baseline=json_number(closed_mean),
                ratio_to_closed_mouth=json_number(rendered_mean / closed_mean if closed_mean else math.nan),
                library_closed_frames=len(closed_library),
                frames=int(both.sum()),
                selection_oracles=oracles,
                unit="inter-ocular distances (face.inter_ocular)",
            ),
            "pbm_closed_share": entry(
                "pbm_closed_share", share,
                events=len(checks_rendered),
                closed=int(sum(bool(c.closed) for c in checks_rendered)),
                real_footage=json_number(closed_share(checks_real)),
                # only the events where the real mouth did close (the phone timing is right)
                on_real_closures=json_number(closed_share(
                    [c for c, r in zip(checks_rendered, checks_real) if r.closed])),
                threshold=json_number(threshold),
                real_closed_level=json_number(closed_level),
                real_open_level=json_number(open_level),
                tolerance_s=PBM_TOLERANCE_S,
            ),
            "av_offset_difference": entry(
                "av_offset_difference", difference,
                rendered_lag=lag_rendered,
                real_lag=lag_real,
                rendered_r=json_number(r_rendered),
                real_r=json_number(r_real),
                loudness_baseline_lag=lag_loud,
                unit="frames; positive = mouth after sound",
            ),
            "psnr_outside_mouth_db": entry(
                "psnr_outside_mouth_db", psnr_value,
                capped=psnr_value >= PSNR_CAP_DB,
                worst_frame_db=json_number(min(figures.frame_psnr) if figures.frame_psnr else math.nan),
                frames_with_mouth=figures.touched_frames,
                dilation_px=MASK_DILATION_PX,
            ),
            "jitter_ratio": {
                "value": json_number(jitter_ratio),
                "target": "report only (1 = as steady as the real footage)",
                "pass": None,
                "rendered": json_number(jitter_rendered, 6),
                "real": json_number(jitter_real, 6),
            },
        },
        "faces_found": {
            "real": int(np.isfinite(real_ap).sum()),
            "rendered": int(np.isfinite(rend_ap).sum()),
        },
        "pbm_events": [
            {"start": round(c.start, 3), "end": round(c.end, 3), "phone": c.phone, "closed": c.closed,
             "min_aperture": json_number(c.min_aperture), "real_closed": r.closed,
             "real_min_aperture": json_number(r.min_aperture),
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
    eyes = landmarks[list(face.EYE_OUTER)]
    across = eyes[1] - eyes[0]
    iod = max(float(np.linalg.norm(across)), 1e-6)
    down = np.array([-across[1], across[0]]) / iod
    pitch = float((landmarks[1] - eyes.mean(axis=0)) @ down) / iod
    width = float(np.linalg.norm(shape[LIP_CORNERS[1]] - shape[LIP_CORNERS[0]]))
    return np.array([aperture_of(shape), width, face.landmark_yaw(landmarks), pitch])


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
            "lip_distance_ratio": json_number(float(distance[rows, chosen].mean()) / static_mean),
            "aperture_r": json_number(pearson(lib_features[chosen, 0], held_features[:, 0])),
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
    renderer's own per-speaker prediction (``lipsync.predict_state``) against the real
    aperture, and ``rendered_vs_predicted_r``: how closely the chosen frames follow it.
    """
    jaw = np.asarray(trajectory.jaw[:n], np.float64)
    open_ = 1.0 - np.asarray(trajectory.closure[:n], np.float64)
    lag, r_lag = best_lag(real_ap, jaw)
    out = {
        "trajectory_jaw_r": json_number(pearson(jaw, real_ap)),
        "trajectory_jaw_best_lag": lag,
        "trajectory_jaw_best_lag_r": json_number(r_lag),
        "trajectory_open_r": json_number(pearson(open_, real_ap)),
        "pbm_trajectory_closed": int(sum(_trajectory_closes(trajectory, c, fps) for c in checks_rendered)),
        "pbm_events": len(checks_rendered),
    }
    try:
        renderer = _renderer()
        predicted = renderer.predict_state(renderer.Library.load(library_path), trajectory)[:n, 0]
    except Exception:  # another renderer (or a stand-in) without this model
        return out
    predicted = np.asarray(predicted, np.float64)
    out["predicted_aperture_r"] = json_number(pearson(predicted, real_ap[: len(predicted)]))
    out["rendered_vs_predicted_r"] = json_number(pearson(rend_ap[: len(predicted)], predicted))
    return out


def aperture_of_canonical(shape: np.ndarray) -> float:
    return aperture_of(shape)
