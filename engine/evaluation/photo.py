"""Photo-avatar figures (``python -m engine eval --photo``): does a single photo talk?

**Self-driven** (a real clip exists): frame 0 of a real talking clip is the photo, driven by
the clip's own sound (``visemes.trajectory_from_audio``, as a recorded voice track is), and
each rendered frame is compared with the real frame at the same time:

- ``aperture_r``: Pearson r of the rendered inner-lip aperture (FaceMesh, ÷ inter-ocular)
  with the real one. Target ≥ 0.5.
- ``lip_distance_ratio``: mean distance of the lip landmarks, rendered vs real, in a
  canonical face frame (``metrics.Canonical``, io = 1), ÷ the same for the static photo.
  Target ≤ 1: the talking photo is closer to the real mouth than the still one.
- ``upper_face_ssim``: SSIM of the upper face (forehead to under the eyes) with the photo,
  after undoing the head's motion (a similarity fitted on the rigid landmarks), the eyes
  masked out in the frames the blink schedule closes them. Target ≥ 0.95.

**Driven** (every portrait, each by a different voice): the driven evaluation's figures
(``driven.mouth_figures``): ``loudness_r`` (≥ 0.35 at the best lag within ±3 frames) and
``rest_in_pauses`` (≥ 0.8 of the voice's pause frames at most rest + 0.2 × speaking range).
The rest and speaking range are the real footage's where there is one; for a portrait
without footage, rest is the rendered rest pose (measured by FaceMesh like every other
frame) and the speaking range the rendered p90 during speech above it.

Portraits: ``skimage.data.astronaut()`` (cropped round the face and enlarged 1.5×: at
512 px her face is only 106 px tall, her lips a few pixels thick), frame 0 of the shared Obama clip, and Grace
Hopper's portrait that matplotlib ships (``sample_data/grace_hopper.jpg``).

Outputs in ``out``: ``photo_eval.json``, ``contact_sheet.png`` (per portrait: real frames over
rendered ones where a real clip exists), ``NAME/render.mp4`` per portrait.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import face, media
from ..errors import InputRejected
from .driven import AUDIO_RATE, OwnMouth, Track, mouth_figures, own_mouth
from .metrics import Canonical, aperture_of, best_lag, lip_distance, lip_indices, pearson
from .report import json_number

PHOTO_TARGETS = {
    "aperture_r": (">=", 0.5),
    "lip_distance_ratio": ("<=", 1.0),
    "upper_face_ssim": (">=", 0.95),
    "loudness_r": (">=", 0.35),
    "rest_in_pauses": (">=", 0.8),
}
SHEET_FRAMES = 8
CELL_PX = 160
SCRIPT = "Good evening. Tonight I want to talk about the work ahead of us, and about the people who will do it."


@dataclass
class Portrait:
    name: str
    rgb: np.ndarray
    source: str
    clip: Path | None = None  # a real talking clip whose frame 0 this is
    voice: Path | None = None  # the voice that drives it (None: the clip's own, or espeak)


def astronaut() -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut()[20:340, 100:420], (480, 480), interpolation=cv2.INTER_CUBIC)


def grace_hopper() -> np.ndarray:
    import matplotlib
    from PIL import Image

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    return np.asarray(Image.open(path).convert("RGB"))


def first_frame(clip: Path) -> np.ndarray:
    with media.VideoReader(clip) as reader:
        for _, frame in reader.iter_sequential():
            return reader.rgb(frame)
    raise InputRejected(f"{clip} has no frames.", field="video")


def default_portraits(clip: Path | None, voices: list[Path]) -> list[Portrait]:
    voice = iter(voices)
    portraits = [Portrait("astronaut", astronaut(), "skimage.data.astronaut(), face crop ×1.5", voice=next(voice, None))]
    if clip is not None and clip.is_file():
        portraits.append(Portrait(clip.stem, first_frame(clip), f"frame 0 of {clip.name}", clip=clip))
    portraits.append(Portrait("grace_hopper", grace_hopper(), "matplotlib sample_data/grace_hopper.jpg",
                              voice=next(voice, None)))
    return portraits


def _judge(name: str, value) -> bool | None:
    if value is None or not math.isfinite(value):
        return None
    op, target = PHOTO_TARGETS[name]
    return bool(value >= target) if op == ">=" else bool(value <= target)


def _entry(name: str, value, **extra) -> dict:
    op, target = PHOTO_TARGETS[name]
    return {"value": json_number(value), "target": f"{op} {target}", "pass": _judge(name, value), **extra}


def _driving_audio(portrait: Portrait, folder: Path) -> tuple[np.ndarray, str]:
    from .. import speech

    if portrait.clip is not None:
        return speech.load_audio(portrait.clip, sample_rate=AUDIO_RATE), f"{portrait.clip.name} (its own sound)"
    if portrait.voice is not None:
        return speech.load_audio(portrait.voice, sample_rate=AUDIO_RATE), portrait.voice.name
    spoken = speech.synthesize(SCRIPT, voice="en-us")
    pad = np.zeros(AUDIO_RATE // 2, np.float32)
    samples = np.concatenate([pad, speech.resample(spoken.samples, spoken.sample_rate, AUDIO_RATE), pad])
    return samples.astype(np.float32), "espeak en-us script"


def _upper_face(landmarks: np.ndarray, shape) -> tuple[int, int, int, int]:
    x0, x1 = landmarks[234, 0], landmarks[454, 0]
    y0, y1 = landmarks[10, 1], landmarks[197, 1]
    h, w = shape[:2]
    return int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))


def _eye_mask(landmarks: np.ndarray, shape, io: float) -> np.ndarray:
    import cv2

    from ..photo.rig import EYES

    mask = np.zeros(shape[:2], np.uint8)
    for outer, upper, inner, lower in EYES:
        ring = landmarks[[outer, *upper, inner, *lower[::-1]], :2]
        cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 1)
    grow = int(0.12 * io) * 2 + 1
    return cv2.dilate(mask, np.ones((grow, grow), np.uint8)).astype(bool)


def upper_face_ssim(photo: np.ndarray, frame: np.ndarray, photo_lm: np.ndarray, mask_eyes: bool, io: float,
                    start: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(SSIM of the upper face with the photo, the rotation + shift that undid the head's
    motion). The motion is found by image registration (ECC, Euclidean) on the upper face
    itself, not from landmarks: FaceMesh on a frame and on the still photo differ by pixels,
    which alone would cost SSIM more than any change the renderer makes. The eyes are left
    out of both the registration and the SSIM in frames the blink schedule closes them."""
    import cv2
    from skimage.metrics import structural_similarity

    x0, y0, x1, y1 = _upper_face(photo_lm, photo.shape)
    keep = np.zeros(photo.shape[:2], bool)
    keep[y0:y1, x0:x1] = True
    if mask_eyes:
        keep &= ~_eye_mask(photo_lm, photo.shape, io)
    reference = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    current = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    warp = np.eye(2, 3, dtype=np.float32) if start is None else start.astype(np.float32)
    try:
        _, warp = cv2.findTransformECC(reference.astype(np.float32), current.astype(np.float32), warp,
                                       cv2.MOTION_EUCLIDEAN,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6),
                                       keep.astype(np.uint8), 3)
    except cv2.error:  # no convergence: judge the frame as it is
        warp = np.eye(2, 3, dtype=np.float32)
    aligned = cv2.warpAffine(current, warp, (photo.shape[1], photo.shape[0]),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    _, full = structural_similarity(reference[y0:y1, x0:x1], aligned[y0:y1, x0:x1], full=True, data_range=255)
    return float(full[keep[y0:y1, x0:x1]].mean()), warp


def _face_crop(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    import cv2

    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    centre = (lo + hi) / 2
    side = float(max(hi - lo)) * 1.35
    x0 = int(np.clip(centre[0] - side / 2, 0, max(0, rgb.shape[1] - side)))
    y0 = int(np.clip(centre[1] - side / 2, 0, max(0, rgb.shape[0] - side)))
    crop = rgb[y0:y0 + int(side), x0:x0 + int(side)]
    return cv2.resize(crop, (CELL_PX, CELL_PX), interpolation=cv2.INTER_AREA)


def evaluate_portrait(portrait: Portrait, folder: Path, progress=None) -> tuple[dict, list[np.ndarray]]:
    """Render one portrait speaking its voice, measure it; (its figures, its contact-sheet rows)."""
    from .. import photo
    from ..visemes import trajectory_from_audio

    folder.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    rig = photo.PhotoRig.from_image(portrait.rgb)
    rig_s = time.perf_counter() - clock
    samples, voice_name = _driving_audio(portrait, folder)
    reader = media.VideoReader(portrait.clip) if portrait.clip is not None else None
    try:
        fps = float(reader.fps) if reader is not None else 25.0
        n = max(1, int(math.ceil(len(samples) / AUDIO_RATE * fps - 1e-9)))
        if reader is not None:
            n = min(n, reader.frame_count)
        trajectory = trajectory_from_audio(samples, AUDIO_RATE, fps)
        life = photo.plan_life(samples, AUDIO_RATE, fps, n)
        frames = photo.animate(rig, trajectory, samples, AUDIO_RATE, fps, n, life=life)
        real_frames = reader.iter_sequential() if reader is not None else None

        rendered_ap, real_ap, ssim = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        rendered_lm: list = [None] * n
        real_lm: list = [None] * n
        every = max(1, n // SHEET_FRAMES)
        sheet_rendered, sheet_real = [], []
        render_s = 0.0
        tracker, real_tracker = face.FaceTracker(), face.FaceTracker() if reader is not None else None
        undo = None
        h, w = rig.rgb.shape[:2]
        with media.VideoWriter(folder / "render.mp4", width=w - w % 2, height=h - h % 2, fps=fps,
                               audio=samples, sample_rate=AUDIO_RATE) as writer:
            for k in range(n):
                clock = time.perf_counter()
                frame = next(frames)
                render_s += time.perf_counter() - clock
                writer.write(np.ascontiguousarray(frame[: h - h % 2, : w - w % 2]))
                lm = tracker.track(frame)
                rendered_lm[k] = lm
                rendered_ap[k] = aperture_of(lm)
                ssim[k], undo = upper_face_ssim(rig.rgb, frame, rig.landmarks, bool(life.eyes[k] > 0.01), rig.io,
                                                undo)
                real = None
                if real_frames is not None:
                    _, decoded = next(real_frames)
                    real = reader.rgb(decoded)
                    real_lm[k] = real_tracker.track(real)
                    real_ap[k] = aperture_of(real_lm[k])
                if k % every == 0 and len(sheet_rendered) < SHEET_FRAMES:
                    sheet_rendered.append(_face_crop(frame, rig.landmarks))
                    if real is not None:
                        sheet_real.append(_face_crop(real, rig.landmarks))
                if progress is not None and k % 25 == 0:
                    progress(portrait.name[:14], k / n)
        tracker.close()
        if real_tracker is not None:
            real_tracker.close()
    finally:
        if reader is not None:
            reader.close()

    track = Track.of(samples, AUDIO_RATE, fps, n)
    entry: dict = {"source": portrait.source, "voice": voice_name, "frames": n, "fps": fps,
                   "face_height_px": round(rig.face_height, 1), "photo_teeth": rig.photo_teeth is not None,
                   "blinks": len(life.blinks), "blinks_per_minute": round(len(life.blinks) / (n / fps) * 60, 1),
                   "faces_found": int(np.isfinite(rendered_ap).sum()), **track.counts()}
    if portrait.clip is not None:
        own = own_mouth(real_ap, track.speech, track.pauses)
        canonical = Canonical(rig.landmarks)
        lips = lip_indices()
        real_c = [canonical(lm) for lm in real_lm]
        rendered_d = np.array([lip_distance(canonical(r), c, lips) for r, c in zip(rendered_lm, real_c)])
        static_d = np.array([lip_distance(canonical(rig.landmarks), c, lips) for c in real_c])
        both = np.isfinite(rendered_d) & np.isfinite(static_d)
        ratio = float(rendered_d[both].mean() / static_d[both].mean()) if both.any() else math.nan
        lag, lagged = best_lag(rendered_ap, real_ap, 3)
        follow_lag, follow = best_lag(np.asarray(trajectory.jaw[:n]), real_ap, 3)
        entry["aperture_r"] = _entry("aperture_r", pearson(rendered_ap, real_ap), best_lag=lag,
                                     r_at_best_lag=json_number(lagged),
                                     trajectory_jaw_r=json_number(pearson(np.asarray(trajectory.jaw[:n]), real_ap)),
                                     trajectory_jaw_best=[follow_lag, json_number(follow)])
        entry["lip_distance_ratio"] = _entry("lip_distance_ratio", ratio,
                                             rendered=json_number(rendered_d[both].mean() if both.any() else None),
                                             static_photo=json_number(static_d[both].mean() if both.any() else None))
        entry["own_mouth"] = "the real footage's"
    else:
        rest_frame = photo.Animator(rig).frame({"jaw": 0.0, "width": 0.5, "round": 0.0, "closure": 1.0, "tuck": 0.0,
                                     "teeth": 0.0, "viseme": "sil"})
        rest = face.FaceTracker()
        rest_ap = aperture_of(rest.track(rest_frame))
        rest.close()
        speaking = rendered_ap[track.speech & np.isfinite(rendered_ap)]
        top = float(np.percentile(speaking, 90)) if speaking.size else rest_ap
        own = OwnMouth(rest=rest_ap, speaking_range=max(top - rest_ap, 0.0), speech_median=math.nan,
                       speech_p90=top, rest_frames=1, rest_from="rendered rest pose")
        entry["own_mouth"] = "the rendered rest pose"
    figures = mouth_figures(rendered_ap, track.loudness, track.speech, track.pauses, own)
    entry["upper_face_ssim"] = _entry("upper_face_ssim", float(np.nanmean(ssim)),
                                      worst=json_number(float(np.nanmin(ssim))))
    entry["loudness_r"] = _entry("loudness_r", figures["loudness_r"], lag=figures["lag"])
    entry["rest_in_pauses"] = _entry("rest_in_pauses", figures["rest_in_pauses"],
                                     frames_judged=figures["pause_frames_judged"],
                                     rest=json_number(own.rest), rest_limit=json_number(own.rest_limit))
    entry["render_fps"] = round(n / max(render_s, 1e-9), 1)
    entry["rig_s"] = round(rig_s, 2)
    rows = [np.hstack(sheet_real)] if sheet_real else []
    rows.append(np.hstack(sheet_rendered))
    return entry, rows


def speed_720p(seconds: float = 4.0) -> dict:
    """Frames per second of the animation alone on a 1280×720 frame (Grace Hopper enlarged
    1.2× on a plain background: a face 240 px tall), one OpenCV thread, CPU time."""
    import cv2

    from .. import photo

    rgb = cv2.resize(grace_hopper(), None, fx=1.2, fy=1.2, interpolation=cv2.INTER_CUBIC)[:720]
    left = (1280 - rgb.shape[1]) // 2
    canvas = cv2.copyMakeBorder(rgb, 0, 720 - rgb.shape[0], left, 1280 - rgb.shape[1] - left,
                                cv2.BORDER_CONSTANT, value=(70, 80, 90))
    rig = photo.PhotoRig.from_image(canvas)
    animator = photo.Animator(rig)
    rng = np.random.default_rng(0)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        n = int(seconds * 25)
        cpu, wall = time.process_time(), time.perf_counter()
        for k in range(n):
            jaw = float(rng.uniform(0, 1))
            animator.frame({"jaw": jaw, "width": 0.5, "round": 0.2, "closure": 0.0, "tuck": 0.0, "teeth": 0.5,
                            "viseme": "aa"}, eyes=float(k % 10 == 0), pitch=1.0, yaw=0.5, roll=0.3)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        cv2.setNumThreads(threads)
    return {"frame_ms_cpu": round(cpu / n * 1000, 1), "frame_ms_wall": round(wall / n * 1000, 1),
            "fps_cpu": round(n / cpu, 1), "size": "1280x720", "face_height_px": round(rig.face_height)}


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], path: Path) -> None:
    from PIL import Image, ImageDraw

    label_w = 150
    width = label_w + max(r.shape[1] for _, parts in rows for r in parts)
    height = sum(r.shape[0] for _, parts in rows for r in parts) + 22
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 4), "each portrait: real frames (top, where a real clip exists) / rendered from one photo (below)",
              fill=(220, 220, 220))
    y = 22
    for name, parts in rows:
        for i, part in enumerate(parts):
            label = name if i == 0 else ""
            tag = "real" if len(parts) > 1 and i == 0 else "rendered"
            draw.text((6, y + 6), f"{label}\n{tag}" if label else tag, fill=(255, 230, 120))
            sheet.paste(Image.fromarray(part), (label_w, y))
            y += part.shape[0]
    sheet.save(path)


def evaluate_photo(*, out: str | Path, clip: str | Path | None = None, voices: list[str | Path] = (),
                   progress=None) -> dict:
    """Every portrait rendered, measured and drawn; the figures (also in ``out/photo_eval.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    portraits = default_portraits(Path(clip) if clip else None, [Path(v) for v in voices])
    result: dict = {"portraits": {}, "targets": {k: f"{op} {t}" for k, (op, t) in PHOTO_TARGETS.items()}}
    rows = []
    for portrait in portraits:
        entry, parts = evaluate_portrait(portrait, out / portrait.name, progress)
        result["portraits"][portrait.name] = entry
        rows.append((portrait.name, parts))
    contact_sheet(rows, out / "contact_sheet.png")
    result["speed_720p"] = speed_720p()
    result["files"] = {"json": "photo_eval.json", "contact_sheet": "contact_sheet.png",
                       "renders": "NAME/render.mp4"}
    (out / "photo_eval.json").write_text(json.dumps(result, indent=1), "utf-8")
    return result


def summary_lines(result: dict) -> list[str]:
    names = ("aperture_r", "lip_distance_ratio", "upper_face_ssim", "loudness_r", "rest_in_pauses")
    lines = [f"{'portrait':<22}" + "".join(f"{n:>20}" for n in names) + f"{'blinks/min':>12}{'render fps':>12}"]
    for name, entry in result["portraits"].items():
        cells = []
        for figure in names:
            item = entry.get(figure)
            if item is None:
                cells.append(f"{'—':>20}")
                continue
            value = item["value"]
            mark = {True: "ok", False: "MISS", None: "?"}[item["pass"]]
            text = "nan" if value is None else f"{value:.3f}"
            if figure == "loudness_r" and item.get("lag") is not None:
                text += f" @{item['lag']:+d}"
            cells.append(f"{text + ' ' + mark:>20}")
        lines.append(f"{name:<22}" + "".join(cells) + f"{entry['blinks_per_minute']:>12}{entry['render_fps']:>12}")
    lines.append("targets: " + ", ".join(f"{k} {v}" for k, v in result["targets"].items()))
    for name, entry in result["portraits"].items():
        item = entry.get("aperture_r")
        if item and item.get("trajectory_jaw_best"):
            lag, best = item["trajectory_jaw_best"]
            lines.append(f"{name}: aperture r {item['value']:.3f} at lag 0, {item['r_at_best_lag']:.3f} at its best lag "
                         f"({item['best_lag']:+d}); the trajectory's own jaw against the real aperture (the ceiling "
                         f"of any renderer that follows it): r {item['trajectory_jaw_r']:.3f} at lag 0, {best:.3f} "
                         f"at lag {lag:+d}")
    speed = result.get("speed_720p")
    if speed:
        lines.append(f"720p animation alone: {speed['frame_ms_cpu']} ms CPU per frame ({speed['fps_cpu']} fps on one "
                     f"core; {speed['frame_ms_wall']} ms wall), face {speed['face_height_px']} px")
    for name, entry in result["portraits"].items():
        lines.append(f"  {name}: {entry['source']}; voice {entry['voice']}; {entry['frames']} frames at "
                     f"{entry['fps']:g} fps; rest from {entry['own_mouth']}")
    return lines


def write_report(path: str | Path, result: dict, lines: list[str], out: str | Path) -> None:
    """A generated Markdown section: the command, when, the table, and the contact sheet
    (copied beside the page as ``photo_contact_sheet.png``)."""
    import datetime
    import shlex
    import shutil
    import sys

    from ..devmedia import shared_media

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = path.parent / "photo_contact_sheet.png"
    shutil.copyfile(Path(out) / "contact_sheet.png", sheet)
    # The shared media's place differs per machine: the page names it by its variable,
    # however the command spelled it (absolute, or relative to here).
    folder = shared_media().resolve()

    def named(arg: str) -> str:
        candidate = Path(arg)
        if candidate.exists() and folder in candidate.resolve().parents:
            return "$STUDIO_SHARED_MEDIA/" + candidate.resolve().relative_to(folder).as_posix()
        return shlex.quote(arg)

    arguments = [named(arg) for arg in sys.argv[1:]]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    path.write_text(
        "## Photo avatars: measured figures (generated)\n\n"
        "Written by `python -m engine eval --photo`; do not edit by hand. What the figures mean:\n"
        "docs/photo.md.\n\n"
        f"Measured {when} (load average {load:.1f}) with:\n\n"
        f"```\npython -m engine {' '.join(arguments)}\n```\n\n"
        "```\n" + "\n".join(lines) + "\n```\n\n"
        f"![portraits: real frames over rendered ones]({sheet.name})\n"
    )
