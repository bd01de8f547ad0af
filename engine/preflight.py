"""Pre-flight checks for avatar sources, before any heavy work.

The rules are the ones A2E and Tencent document for avatar footage: MP4/MOV video of 10 s–5 min,
at most 4K, 15–60 fps; or a JPEG/PNG/WebP photo of at most 10 MB and 4000 px a side; in both,
exactly one face, 1/10–1/3 of the frame width, roughly frontal.

Checks run cheapest first — magic bytes, then a time-limited probe in a child process, then
face detection on a handful of frames reached by seeking — and face detection only runs when
every structural rule passed. Each problem's message is one sentence a creator can act on.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import media
from .errors import InputRejected
from .face import FRONTAL_MAX_YAW, FaceBox, detect_faces

VIDEO_TYPES = {"video/mp4", "video/quicktime"}
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}

MIN_VIDEO_SECONDS = 10.0
MAX_VIDEO_SECONDS = 300.0
MAX_VIDEO_LONG_SIDE = 4096  # "4K" as Tencent counts it (DCI width); A2E only says "≤ 4K"
MIN_FPS, MAX_FPS = 15.0, 60.0
MAX_PHOTO_BYTES = 10_000_000  # decimal MB: the stricter reading of "10MB"
MAX_PHOTO_SIDE = 4000
# The engine needs the mouth a few dozen pixels wide, and room around the face for the jaw to
# drop and the head to move; the share of the frame the face fills does not matter to it.
# The detector's box spans brows to chin, cheek to cheek: 80 pixels across is a face about
# 120 pixels tall, below which the mouth is a few pixels wide.
MIN_FACE_PX = 80
JAW_ROOM = 0.05  # of the face box's height, free below its bottom (about the chin) for the jaw to drop
SIDE_ROOM = 0.03  # of the frame's width, free beside the face box
VIDEO_SAMPLES = 6

_UPLOAD_HINT = "upload an MP4 or MOV video, or a JPEG, PNG or WebP photo."
_CLAIMED_KIND = {"mp4": "video", "m4v": "video", "mov": "video", "qt": "video",
                 "jpg": "photo", "jpeg": "photo", "png": "photo", "webp": "photo"}
_DURATION_SLACK = 0.05  # container rounding: a 10.00 s recording may probe as 9.98 s


@dataclass
class Problem:
    field: str
    code: str
    message: str


@dataclass
class PreflightReport:
    kind: str | None  # "video" | "photo" | None when the type itself is wrong
    mime: str | None
    extension: str | None
    info: dict = field(default_factory=dict)
    faces: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, message: str, *, field: str = "source") -> None:
        self.problems.append(Problem(field=field, code=code, message=message))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "PreflightReport":
        return cls(
            kind=data.get("kind"),
            mime=data.get("mime"),
            extension=data.get("extension"),
            info=dict(data.get("info") or {}),
            faces=list(data.get("faces") or []),
            problems=[Problem(**p) for p in data.get("problems") or []],
        )


# --------------------------------------------------------------------------------------
# Wording helpers
# --------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    if value >= 60:
        minutes, seconds = divmod(int(round(value)), 60)
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    if abs(value - round(value)) < 0.05:
        return f"{int(round(value))} s"
    return f"{value:.1f} s"


def _megabytes(size: int) -> str:
    tenths = -(-size // 100_000)  # round up: 10.01 MB must not read "10.0 MB"
    return f"{tenths / 10:.1f}"


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------


def source_kind(path: str | Path, *, name: str | None = None, kind: str | None = None) -> tuple[str, str]:
    """The avatar kind ("video"/"photo") and real MIME type of a file, from its bytes.

    ``kind`` is what the creator said they uploaded; without it the extension of ``name``
    (default: the path's own name) stands in. A PNG named ``.mp4`` is refused rather than
    guessed at. Cheap (reads the first bytes), so the web form calls it before storing.
    """
    path = Path(path)
    mime = media.sniff_type(path)
    claimed = kind or _CLAIMED_KIND.get(Path(name or path.name).suffix.lower().lstrip("."))
    if mime is None:
        raise InputRejected(f"We couldn't recognise this file's type; {_UPLOAD_HINT}", field="source", code="unknown_type")
    actual = "video" if mime in VIDEO_TYPES else "photo" if mime in PHOTO_TYPES else None
    described = media.TYPE_DESCRIPTIONS.get(mime, "a kind of file we can't use")
    if actual is None:
        extra = " (on an iPhone, choose Most Compatible or export as JPEG)" if mime == "image/heic" else ""
        raise InputRejected(f"This file is {described}{extra}; {_UPLOAD_HINT}", field="source", code="unsupported_type")
    if claimed and claimed != actual:
        raise InputRejected(
            f"This file is {described}, not a {claimed}; {_UPLOAD_HINT}", field="source", code="type_mismatch"
        )
    return actual, mime


def photo_size_problem(size: int) -> str | None:
    """The sentence for a photo over the size limit, or None."""
    if size > MAX_PHOTO_BYTES:
        return f"The photo is {_megabytes(size)} MB; photos must be 10 MB or smaller."
    return None


def check_background_image(path: str | Path) -> str:
    """The photo rules for a background image, read from its header; returns its extension.

    Cheap enough for the web form: a 400-KB PNG that declares 30000 × 30000 pixels is refused
    here, before any worker tries to decode it.
    """
    path = Path(path)
    mime = media.sniff_type(path)
    if mime not in PHOTO_TYPES:
        raise InputRejected(
            "The background must be a JPEG, PNG or WebP image.", field="background_image", code="unsupported_type"
        )
    size = path.stat().st_size
    if size > MAX_PHOTO_BYTES:
        raise InputRejected(
            f"The background image is {_megabytes(size)} MB; background images must be 10 MB or smaller.",
            field="background_image",
            code="background_too_large",
        )
    dimensions = media.image_size(path)
    if dimensions is None:
        raise InputRejected(
            "The background image can't be read; export it again as a JPEG, PNG or WebP.",
            field="background_image",
            code="background_unreadable",
        )
    if max(dimensions) > MAX_PHOTO_SIDE:
        raise InputRejected(
            f"The background image is {dimensions[0]} × {dimensions[1]} pixels; background images must be "
            f"at most {MAX_PHOTO_SIDE} pixels on each side.",
            field="background_image",
            code="background_too_big",
        )
    return media.EXTENSION_FOR_TYPE[mime]


def check_avatar_source(
    path: str | Path, *, kind: str | None = None, probe_timeout: float = 20.0, reference: str | Path | None = None
) -> PreflightReport:
    """Check a creator's avatar upload; ``report.ok`` or ``report.problems`` say what to fix.

    With a ``reference`` photo of the person who should speak, video footage may show other
    people too: preparation follows the face most like the photo (Tencent's reference photo)."""
    path = Path(path)
    mime = media.sniff_type(path)
    report = PreflightReport(kind=None, mime=mime, extension=media.EXTENSION_FOR_TYPE.get(mime or ""))
    try:
        actual, _ = source_kind(path, kind=kind)
    except InputRejected as problem:
        report.add(problem.code, str(problem))
        return report
    report.kind = actual

    if actual == "photo":
        _check_photo(path, report, probe_timeout=probe_timeout)
    else:
        if reference is not None:
            _check_reference(Path(reference), report)
        _check_video(path, report, probe_timeout=probe_timeout, crowd_allowed=reference is not None)
    return report


def check_reference_photo(path: str | Path) -> str:
    """A reference photo's type and size (from its bytes, never decoding it): its extension,
    or ``InputRejected`` with a sentence (field ``reference``)."""
    path = Path(path)
    mime = media.sniff_type(path)
    if mime not in PHOTO_TYPES:
        raise InputRejected("The reference photo must be a JPEG, PNG or WebP photo of the person.",
                            field="reference", code="reference_type")
    too_large = photo_size_problem(path.stat().st_size)
    if too_large:
        raise InputRejected(too_large.replace("The photo", "The reference photo"), field="reference",
                            code="reference_too_large")
    return media.EXTENSION_FOR_TYPE[mime]


def _check_reference(path: Path, report: PreflightReport) -> None:
    try:
        check_reference_photo(path)
    except InputRejected as problem:
        report.add(problem.code, str(problem), field="reference")
        return
    faces = detect_faces(media.load_image_rgb(path))
    if len(faces) != 1:
        report.add("reference_faces", "The reference photo must show exactly one face: the person who should speak.",
                   field="reference")


def _probe(path: Path, report: PreflightReport, timeout: float) -> media.MediaInfo | None:
    try:
        info = media.probe(path, timeout=timeout)
    except InputRejected as problem:
        report.add(problem.code or "unreadable", str(problem), field=problem.field or "source")
        return None
    report.info = {
        "duration": info.duration,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "size_bytes": info.size_bytes,
        "frame_count": info.frame_count,
        "video_codec": info.video_codec,
        "audio_codec": info.audio_codec,
        "has_audio": info.has_audio,
        "rotation": info.rotation,
    }
    return info


def _check_photo(path: Path, report: PreflightReport, *, probe_timeout: float) -> None:
    size = path.stat().st_size
    report.info = {"size_bytes": size}
    too_large = photo_size_problem(size)
    if too_large:
        report.add("photo_too_large", too_large)
        return
    info = _probe(path, report, probe_timeout)
    if info is None:
        return
    if max(info.width, info.height) > MAX_PHOTO_SIDE:
        report.add(
            "photo_too_big",
            f"The photo is {info.width} × {info.height} pixels; photos must be at most "
            f"{MAX_PHOTO_SIDE} pixels on each side.",
        )
        return
    rgb = media.load_image_rgb(path)
    faces = detect_faces(rgb)
    report.faces = [{"time": None, **f.to_dict()} for f in faces]
    _judge_faces(report, [faces], info.width)
    if not report.problems:
        _check_photo_animates(rgb, report)


def _check_photo_animates(rgb, report: PreflightReport) -> None:
    """What the talking-photo method itself cannot animate (a profile, a covered mouth), as
    it measures the photo at render time: refused now, with its sentence."""
    from .photo import check_photo
    from .pipeline import MAX_PREPARED_LONG_SIDE, _fit_photo

    try:
        check_photo(_fit_photo(rgb, MAX_PREPARED_LONG_SIDE))
    except InputRejected as problem:
        report.add(problem.code or "photo_cannot_animate", str(problem))


def _check_video(path: Path, report: PreflightReport, *, probe_timeout: float, crowd_allowed: bool = False) -> None:
    info = _probe(path, report, probe_timeout)
    if info is None:
        return
    if not info.has_video:
        report.add("no_video", "This file has no picture, only sound; upload a video of yourself speaking.")
        return
    if info.duration < MIN_VIDEO_SECONDS - _DURATION_SLACK or info.duration > MAX_VIDEO_SECONDS + _DURATION_SLACK:
        report.add(
            "too_short" if info.duration < MIN_VIDEO_SECONDS else "too_long",
            f"The video is {_seconds(info.duration)} long; an avatar needs 10 s to 5 min of you speaking.",
        )
    if max(info.width, info.height) > MAX_VIDEO_LONG_SIDE:
        report.add(
            "resolution_too_high",
            f"The video is {info.width} × {info.height} pixels; videos can be at most 4K "
            f"({MAX_VIDEO_LONG_SIDE} pixels on the long side), so export it at 1080p or 4K.",
        )
    if not MIN_FPS - 0.5 <= info.fps <= MAX_FPS + 0.5:
        report.add(
            "fps_out_of_range",
            f"The video runs at {info.fps:.0f} frames per second; avatar videos need 15 to 60.",
        )
    if report.problems:
        return  # structural failure: don't spend time decoding
    times = media.sample_times(info.duration, VIDEO_SAMPLES)
    try:
        frames = media.read_frames_at(path, times)
    except InputRejected as problem:
        report.add(problem.code or "unreadable", str(problem))
        return
    except Exception:  # a decoder error mid-file: same sentence as any unreadable upload
        report.add("unreadable", str(media.unreadable_error(info.mime)))
        return
    per_frame: list[list[FaceBox]] = []
    for t, rgb in zip(times, frames):
        faces = detect_faces(rgb)
        per_frame.append(faces)
        report.faces.extend({"time": round(t, 3), **f.to_dict()} for f in faces)
    _judge_faces(report, per_frame, info.width, crowd_allowed=crowd_allowed)


def _judge_faces(
    report: PreflightReport, per_frame: list[list[FaceBox]], frame_width: int, *, crowd_allowed: bool = False
) -> None:
    """Exactly one face, large enough, inside the frame with room for the jaw, roughly
    frontal — judged over the sampled frames.

    A single stray detection in one sample doesn't fail a video; a second person seen in two
    or more samples (or in the photo) does.
    """
    total = max(1, len(per_frame))
    with_face = [faces for faces in per_frame if faces]
    crowded = [faces for faces in per_frame if len(faces) >= 2]
    if not with_face or len(with_face) * 2 < total:
        report.add(
            "no_face",
            "We couldn't find a face; make sure your whole face is visible, well lit and facing the camera.",
        )
        return
    if crowded and not crowd_allowed and (len(crowded) >= 2 or total == 1 or len(crowded) * 4 > total):
        count = max(len(faces) for faces in crowded)
        extra = "" if report.kind == "photo" else ", or a reference photo of the one who should speak"
        report.add("multiple_faces",
                   f"We found {count} faces; an avatar needs exactly one person in the frame{extra}.")
        return
    main = [faces[0] for faces in with_face]  # largest face per frame
    ratio = statistics.median(f.width for f in main)
    pixels = ratio * frame_width
    bottom = statistics.median(f.y + f.height * (1 + JAW_ROOM) for f in main)
    left = statistics.median(f.x for f in main)
    right = statistics.median(f.x + f.width for f in main)
    if pixels < MIN_FACE_PX:
        report.add(
            "face_too_small",
            f"Your face is about {pixels:.0f} pixels wide; it needs at least {MIN_FACE_PX}, so move closer "
            "(or zoom in), or upload a higher resolution.",
        )
    elif bottom > 1.0:
        report.add(
            "face_cut_off",
            "Your chin is at the bottom edge of the frame; leave room below it for the mouth to open "
            "(step back, or frame a little lower).",
        )
    elif left < SIDE_ROOM or right > 1.0 - SIDE_ROOM:
        report.add(
            "face_cut_off",
            "Your face touches the side of the frame; keep your whole face in the picture with a little "
            "space around it.",
        )
    yaw = statistics.median(abs(f.yaw) for f in main)
    if yaw > FRONTAL_MAX_YAW:
        report.add(
            "not_frontal",
            f"Your face is turned about {yaw:.0f}° away from the camera; face the camera so both ears are visible.",
        )
    report.info["face_width_ratio"] = round(ratio, 4)
    report.info["face_yaw"] = round(yaw, 1)
