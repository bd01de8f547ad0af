"""Driven evaluation: an avatar's footage plus *any* voice track — does the mouth follow it?

``evaluate_driven(video, voices, out=DIR)`` prepares the avatar from the whole footage once,
as the studio does (``pipeline.prepare_avatar``), renders each driving voice onto it
(``pipeline.render``) and measures the rendered mouth with FaceMesh, frame by frame, on the
encoded render. Nobody ever said these words in this footage, so there is no ground truth for
the mouth: it is judged against the voice, and against the person's own habits in the footage.

**The person's own mouth** (the footage, measured once): the inner-lip aperture ÷
inter-ocular distance of every frame (``metrics.aperture_of``, as the self-reenactment
eval), and the footage's own speech and pauses (below). From those:

- *rest level*: the 10th percentile of the aperture over the footage's pause frames (or
  over all frames when it has fewer than ``MIN_REST_FRAMES`` of them);
- *speaking range*: the 90th percentile during its speech − rest;
- *own median* and *own p90*: the aperture's median and 90th percentile during its speech.

**Speech and pauses of a track** (footage or voice): ``speech.voice_activity``, the energy VAD
the recogniser itself decodes by (thresholds relative to the track's own noise floor and
loud level, hysteresis, gaps under 0.2 s merged as breaths between words). A frame is
*speech* when its time lies inside a speech region. A *pause* is a run of non-speech frames
lasting ≥ 250 ms (``PAUSE_MIN_S``); its first and last 100 ms (``SETTLE_S``) are skipped,
because the mouth needs about that long to close after a word and to open before the next.
The frames left are the *pause frames*.

**Loudness**: ``speech.frame_loudness`` (RMS over one frame period, at the video's frame
rate) in dB, floored ``FLOOR_DB`` (40 dB) under the track's 97th percentile (``loudness_db``).
Log, not linear: how far a jaw opens grows with the *ratio* of loudness (a syllable 6 dB
louder is not a mouth twice as open), linear RMS is so skewed that its r mostly measures
agreement on a few loud stressed syllables, and dB relative to the track's own loud level
does not depend on the recording's gain (the VAD thinks in the same terms). The floor keeps
digital silence (−∞ dB) from dominating. The r against linear RMS is reported beside it.

**Figures per voice** (``report.TARGETS``):

1. ``loudness_r`` — Pearson r of the rendered aperture with the voice's loudness (dB), the
   largest over lags of −3…+3 frames (``lag``: positive = the mouth after the sound). ≥ 0.35.
2. ``rest_in_pauses`` — share of the voice's pause frames (with a face found) whose rendered
   aperture is ≤ rest + 0.2 × speaking range. ≥ 0.8.
3. ``opening_median_ratio``, ``opening_p90_ratio`` — the rendered aperture's median / p90
   over the voice's speech frames ÷ the footage's own median / p90 during its speech.
   0.75–1.25: the mouth opens as wide as this person does when they speak.

The same figures for two reference mouths, so the table shows what they mean:
``loudness_baseline`` (aperture = rest + speaking range × the loudness normalised over the
voice's speech frames, 5th → 0 to 95th percentile → 1; rest outside speech), the mouth the
renderer must never do worse than; and ``footage_baseline``, the untouched footage's own
aperture on the frames the render drew on (no lip sync at all: chance level).

Also per voice, not a mouth-timing figure: ``sharpness_ratio`` (``metrics.sharpness_ratio``),
the rendered lower face's fine detail next to the upper face ÷ the same in the frames drawn
on, a frame every ``SHARPNESS_EVERY_S``. 0.85–1.15: the pasted mouth is as sharp as the face.

**Footage without usable speech** (``footage_audio``): the same footage prepared with its
sound replaced by silence or by music made here (``music``), driven by the same voices and
judged against the person's own mouth *and speech* in the original footage. The avatar's
preparation report must then say the speaker-independent path is used (``preparation``).

Outputs in ``out``: ``avatar/`` (the prepared avatar), ``driven/NAME/`` per voice
(``render.mp4``, ``contact_sheet.png``: the footage's mouth on the frame drawn on over the
rendered mouth every 0.5 s, ``face_sheet.png``: the same for the whole lower face and jaw
line, ``aperture.png``: the rendered aperture, the baseline and the
loudness over time and against each other, and ``voice.wav`` for a script: espeak's speech
with 0.5 s of silence before and after, as a recorded track has), and the figures
under ``driven`` in ``eval.json`` (next to the self-reenactment figures when both ran); for
each replaced sound, ``KIND/`` (``footage-KIND.mp4``, ``avatar/``, ``driven/NAME/``) and the
figures under ``footage_audio.KIND``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import face, media
from ..errors import InputRejected
from .metrics import aperture_of, best_lag, face_sharpness, sharpness_ratio
from .plots import FACE_SPAN, contact_sheet, mouth_crops
from .report import DRIVEN_FIGURES, figure_entry, json_number

PAUSE_MIN_S = 0.250
SETTLE_S = 0.100
LAG_FRAMES = 3
REST_MARGIN = 0.2  # of the speaking range, above rest
REST_PERCENTILE = 10
RANGE_PERCENTILE = 90
MIN_REST_FRAMES = 5
FLOOR_DB = 40.0
SCRIPT_PADDING_S = 0.5
SHEET_EVERY_S = 0.5
SHEET_CELLS = 32
SHARPNESS_EVERY_S = 0.2
RETRACK_EVERY = 10
AUDIO_RATE = 16000
FIGURES = DRIVEN_FIGURES

ProgressFn = Callable[[str, float], None]


# ----------------------------------------------------------------------------- the voices


@dataclass(frozen=True)
class DrivingVoice:
    """A voice track (``path``) or an espeak script (``voice``, ``text``), named for eval.json."""

    name: str
    path: Path | None = None
    voice: str | None = None
    text: str | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else f"espeak:{self.voice}:{self.text}"


def snake_name(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "voice"


def driving_voices(tracks: Iterable[str | Path] = (), scripts: Iterable[str] = ()) -> list[DrivingVoice]:
    """Voices from file paths and ``espeak:LANG:SCRIPT`` specs, with unique snake_case names
    (a file: its stem; a script: ``espeak_LANG``)."""
    voices: list[DrivingVoice] = []
    taken: set[str] = set()

    def unique(base: str) -> str:
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    for track in tracks:
        path = Path(track)
        if not path.is_file():
            raise InputRejected(f"There is no voice track at {path}.", field="drive", code="missing")
        voices.append(DrivingVoice(unique(snake_name(path.stem)), path=path))
    for spec in scripts:
        kind, _, rest = spec.partition(":")
        language, _, text = rest.partition(":")
        if kind != "espeak" or not language or not text.strip():
            raise InputRejected(f"A driving script is espeak:LANG:SCRIPT, not {spec!r}.", field="drive_text")
        voices.append(DrivingVoice(unique(snake_name(f"espeak_{language}")), voice=language, text=text))
    return voices


def _voice_wav(voice: DrivingVoice, folder: Path) -> Path:
    """The voice track: the file, or the script spoken by espeak with ``SCRIPT_PADDING_S`` of
    silence before and after (espeak leaves none, and its pauses between sentences come out
    under 250 ms, so without it a script would have no pause to judge the rest by)."""
    if voice.path is not None:
        return voice.path
    from .. import speech

    spoken = speech.synthesize(voice.text, voice=voice.voice)
    pad = np.zeros(round(SCRIPT_PADDING_S * spoken.sample_rate), np.float32)
    wav = folder / "voice.wav"
    speech.write_wav(wav, np.concatenate([pad, spoken.samples, pad]), spoken.sample_rate)
    return wav


# ----------------------------------------------------------------------------- metric functions


def speech_mask(regions: Iterable[tuple[float, float]], fps: float, count: int) -> np.ndarray:
    """Frames (times k / fps) inside one of the speech ``regions`` (seconds)."""
    times = np.arange(count) / fps
    inside = np.zeros(count, dtype=bool)
    for start, end in regions:
        inside |= (times >= start) & (times < end)
    return inside


def pause_mask(speech: np.ndarray, fps: float, min_pause: float = PAUSE_MIN_S,
               settle: float = SETTLE_S) -> np.ndarray:
    """Non-speech frames in runs of at least ``min_pause`` seconds, less ``settle`` seconds
    at each end of the run."""
    speech = np.asarray(speech, dtype=bool)
    out = np.zeros(len(speech), dtype=bool)
    skip = math.ceil(settle * fps - 1e-9)
    start = None
    for k, quiet in enumerate(list(~speech) + [False]):
        if quiet and start is None:
            start = k
        elif not quiet and start is not None:
            if (k - start) / fps >= min_pause - 1e-9:
                out[start + skip : max(start + skip, k - skip)] = True
            start = None
    return out


def loudness_db(envelope: np.ndarray, floor_db: float = FLOOR_DB) -> np.ndarray:
    """RMS per frame → dB, floored ``floor_db`` under the track's 97th percentile."""
    db = 20.0 * np.log10(np.maximum(np.asarray(envelope, np.float64), 1e-9))
    if db.size == 0:
        return db
    return np.maximum(db, float(np.percentile(db, 97)) - floor_db)


@dataclass(frozen=True)
class OwnMouth:
    """How the person in the footage holds their mouth: at rest, and when they speak."""

    rest: float
    speaking_range: float
    speech_median: float
    speech_p90: float
    rest_frames: int  # the frames the rest level came from
    rest_from: str  # "pauses" or "all frames"

    @property
    def rest_limit(self) -> float:
        return self.rest + REST_MARGIN * self.speaking_range

    def to_json(self) -> dict:
        return {
            "rest": json_number(self.rest), "speaking_range": json_number(self.speaking_range),
            "rest_limit": json_number(self.rest_limit), "speech_median": json_number(self.speech_median),
            "speech_p90": json_number(self.speech_p90), "rest_frames": self.rest_frames,
            "rest_from": self.rest_from,
        }


def _median(values) -> float:
    values = _finite(np.asarray(values, np.float64))
    return float(np.median(values)) if values.size else math.nan


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values[np.isfinite(values)]


def _percentile(values: np.ndarray, q: float) -> float:
    values = _finite(values)
    return float(np.percentile(values, q)) if values.size else math.nan


def own_mouth(aperture: np.ndarray, speech: np.ndarray, pauses: np.ndarray) -> OwnMouth:
    """Rest level, speaking range and the speaking median / p90 of one footage's aperture."""
    aperture = np.asarray(aperture, np.float64)
    resting = _finite(aperture[np.asarray(pauses, bool)])
    rest_from = "pauses"
    if resting.size < MIN_REST_FRAMES:
        resting, rest_from = _finite(aperture), "all frames"
    if resting.size == 0:
        raise InputRejected("FaceMesh found no face in the footage.", field="video")
    rest = float(np.percentile(resting, REST_PERCENTILE))
    speaking = aperture[np.asarray(speech, bool)]
    if _finite(speaking).size == 0:
        speaking = aperture
    top = _percentile(speaking, RANGE_PERCENTILE)
    return OwnMouth(rest=rest, speaking_range=max(top - rest, 0.0), speech_median=_percentile(speaking, 50),
                    speech_p90=top, rest_frames=int(resting.size), rest_from=rest_from)


def rest_share(aperture: np.ndarray, pauses: np.ndarray, limit: float) -> tuple[float, int]:
    """(share of the pause frames with a face whose aperture ≤ ``limit``, those frames)."""
    values = _finite(np.asarray(aperture, np.float64)[np.asarray(pauses, bool)])
    return (float((values <= limit).mean()) if values.size else math.nan), int(values.size)


def mouth_figures(aperture: np.ndarray, loudness: np.ndarray, speech: np.ndarray, pauses: np.ndarray,
                  own: OwnMouth, max_lag: int = LAG_FRAMES) -> dict:
    """The driven figures of one mouth (aperture per frame) against one voice, as floats."""
    aperture = np.asarray(aperture, np.float64)
    lag, r = best_lag(aperture, loudness, max_lag)
    share, judged = rest_share(aperture, pauses, own.rest_limit)
    speaking = aperture[np.asarray(speech, bool)]
    median, p90 = _percentile(speaking, 50), _percentile(speaking, RANGE_PERCENTILE)
    return {
        "loudness_r": r, "lag": lag, "rest_in_pauses": share,
        "pause_frames_judged": judged, "pause_median": _percentile(aperture[np.asarray(pauses, bool)], 50),
        "median": median, "p90": p90,
        "opening_median_ratio": median / own.speech_median if own.speech_median else math.nan,
        "opening_p90_ratio": p90 / own.speech_p90 if own.speech_p90 else math.nan,
    }


def loudness_mouth(loudness: np.ndarray, speech: np.ndarray, own: OwnMouth) -> np.ndarray:
    """The loudness-only mouth: rest + speaking range × loudness normalised over the speech
    frames (5th percentile → 0, 95th → 1, clipped); rest outside speech."""
    loudness, speech = np.asarray(loudness, np.float64), np.asarray(speech, bool)
    out = np.full(len(loudness), own.rest)
    if speech.any():
        lo, hi = np.percentile(loudness[speech], [5, 95])
        level = np.clip((loudness[speech] - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
        out[speech] = own.rest + own.speaking_range * level
    return out


def figures_json(raw: dict, **extra) -> dict:
    """``mouth_figures`` as eval.json entries (value, target, pass)."""
    return {
        "loudness_r": figure_entry("loudness_r", raw["loudness_r"], lag=raw["lag"], **extra),
        "rest_in_pauses": figure_entry("rest_in_pauses", raw["rest_in_pauses"],
                                       frames_judged=raw["pause_frames_judged"],
                                       median=json_number(raw["pause_median"])),
        "opening_median_ratio": figure_entry("opening_median_ratio", raw["opening_median_ratio"],
                                             median=json_number(raw["median"])),
        "opening_p90_ratio": figure_entry("opening_p90_ratio", raw["opening_p90_ratio"],
                                          p90=json_number(raw["p90"])),
    }


# ----------------------------------------------------------------------------- measuring videos


def track_apertures(path: Path, *, progress: ProgressFn | None = None, stage: str = "landmarks",
                    on_frame: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None
                    ) -> tuple[float, np.ndarray]:
    """(fps, aperture per frame: NaN without a face) of a video, decoded and tracked as a stream;
    ``on_frame(index, rgb, landmarks)`` sees every frame on the way.

    When the tracker loses the face it starts afresh on that frame (and every
    ``RETRACK_EVERY`` frames while none is found): ``FaceTracker`` takes a face back only if it
    looks like the one it first saw, and on rendered frames the same person can score under
    its bar (0.73 against 0.82 on the Obama clip), which left half a render unmeasured.
    """
    apertures: list[float] = []
    tracker = face.FaceTracker()
    try:
        with media.VideoReader(path) as reader:
            fps, total = reader.fps, max(1, reader.frame_count)
            for index, frame in reader.iter_sequential():
                rgb = reader.rgb(frame)
                landmarks = tracker.track(rgb)
                lost_now = not apertures or math.isfinite(apertures[-1])
                if landmarks is None and (lost_now or index % RETRACK_EVERY == 0):
                    tracker.close()
                    tracker = face.FaceTracker()
                    landmarks = tracker.track(rgb)
                apertures.append(aperture_of(landmarks))
                if on_frame is not None:
                    on_frame(index, rgb, landmarks)
                if progress is not None and index % 25 == 0:
                    progress(stage, index / total)
    finally:
        tracker.close()
    return fps, np.asarray(apertures, np.float64)


@dataclass
class Track:
    """A sound track on a video's frame clock: loudness (dB), speech and pause frames."""

    loudness: np.ndarray
    linear: np.ndarray
    speech: np.ndarray
    pauses: np.ndarray

    @classmethod
    def of(cls, samples: np.ndarray, rate: int, fps: float, count: int | None = None) -> Track:
        from .. import speech

        envelope = speech.frame_loudness(samples, rate, fps)
        count = len(envelope) if count is None else count
        envelope = np.pad(envelope[:count], (0, max(0, count - len(envelope))))
        spoken = speech_mask(speech.voice_activity(samples, rate), fps, count)
        return cls(loudness_db(envelope), np.asarray(envelope, np.float64), spoken, pause_mask(spoken, fps))

    def figures(self, aperture: np.ndarray, own: OwnMouth) -> dict:
        return mouth_figures(aperture, self.loudness, self.speech, self.pauses, own)

    def counts(self) -> dict:
        return {"frames": len(self.speech), "speech_frames": int(self.speech.sum()),
                "pause_frames": int(self.pauses.sum())}


@dataclass
class Footage:
    media: Path
    library: Path
    fps: float
    aperture: np.ndarray
    track: Track
    own: OwnMouth

    def to_json(self) -> dict:
        return {**self.track.counts(), "fps": self.fps, "faces_found": int(np.isfinite(self.aperture).sum()),
                **self.own.to_json(), "unit": "inner-lip gap / inter-ocular distance"}


def measure_footage(media_path: Path, library: Path, progress: ProgressFn | None = None,
                    sound: Path | None = None) -> Footage:
    """The footage's own mouth, judged by the speech of ``sound`` (default: its own track; the
    original recording when the avatar was prepared from the footage with its sound replaced:
    the engine did not hear him speak, the judge still knows when he did)."""
    from .. import speech

    fps, aperture = track_apertures(media_path, progress=progress, stage="footage")
    samples = speech.load_audio(sound or media_path, sample_rate=AUDIO_RATE)
    track = Track.of(samples, AUDIO_RATE, fps, len(aperture))
    return Footage(media_path, library, fps, aperture, track, own_mouth(aperture, track.speech, track.pauses))


# ----------------------------------------------------------------------------- one voice


def drive(voice: DrivingVoice, footage: Footage, folder: Path, progress: ProgressFn | None = None) -> dict:
    """Render ``voice`` onto the footage and measure the rendered mouth; the voice's entry."""
    from .. import pipeline, speech
    from ..lipsync import showable_frames
    from ..timeline import resampled_sequence

    folder.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    wav = _voice_wav(voice, folder)
    request = pipeline.RenderRequest(avatar_kind="video", avatar_media=footage.media, library=footage.library,
                                     audio=wav, output=folder / "render.mp4", poster=folder / "poster.jpg",
                                     captions=False)  # the mouth is measured, not the words
    staged = None if progress is None else (lambda stage, f: progress(f"{voice.name[:14]} {stage}", f))
    rendered = pipeline.render(request, progress=staged)
    timings["render_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    samples = speech.load_audio(wav, sample_rate=AUDIO_RATE)
    n, fps = rendered.frame_count, footage.fps
    track = Track.of(samples, AUDIO_RATE, fps, n)
    shown = showable_frames(footage.library)
    backgrounds = list(resampled_sequence(len(footage.aperture), n, request.loop_mode, fps, fps, shown=shown))
    every = max(1, round(SHEET_EVERY_S * fps))
    sharp_every = max(1, round(SHARPNESS_EVERY_S * fps))
    cells: list[dict] = []
    faces: list[dict] = []
    sharpness: dict[str, list[float]] = {"rendered": [], "footage": []}

    with media.VideoReader(footage.media) as source:
        def sheet(index: int, rgb: np.ndarray, landmarks) -> None:
            if index >= n or (index % every and index % sharp_every):
                return
            drawn_on = source.rgb(source.frame_at(backgrounds[index]))
            if index % sharp_every == 0:
                # the same landmarks for both: the frame drawn on differs only in its lower face
                sharpness["rendered"].append(face_sharpness(rgb, landmarks))
                sharpness["footage"].append(face_sharpness(drawn_on, landmarks))
            if index % every or len(cells) >= SHEET_CELLS:
                return
            state = "speech" if track.speech[index] else "pause" if track.pauses[index] else ""
            cells.append(mouth_crops(drawn_on, rgb, landmarks, index / fps, f" {state}"))
            faces.append(mouth_crops(drawn_on, rgb, landmarks, index / fps, f" {state}", span=FACE_SPAN))

        _, aperture = track_apertures(rendered.video_path, progress=staged, stage="measure", on_frame=sheet)
    aperture = np.pad(aperture[:n], (0, max(0, n - len(aperture))), constant_values=np.nan)
    timings["measure_s"] = time.perf_counter() - clock

    own = footage.own
    baseline = loudness_mouth(track.loudness, track.speech, own)
    as_is = footage.aperture[backgrounds]
    figures = track.figures(aperture, own)
    _, linear_r = best_lag(aperture, track.linear, LAG_FRAMES)
    entry = {
        "source": voice.source,
        "seconds": json_number(len(samples) / AUDIO_RATE, 3),
        **track.counts(),
        "faces_found": int(np.isfinite(aperture).sum()),
        **figures_json(figures, linear_loudness_r=json_number(linear_r),
                       unit="lag in frames; positive = the mouth after the sound"),
        "loudness_baseline": figures_json(track.figures(baseline, own)),
        "footage_baseline": figures_json(track.figures(as_is, own)),
        "sharpness_ratio": figure_entry(
            "sharpness_ratio", sharpness_ratio(sharpness["rendered"], sharpness["footage"]),
            rendered=json_number(_median(sharpness["rendered"])), footage=json_number(_median(sharpness["footage"])),
            frames=int(np.isfinite(sharpness["rendered"]).sum()),
            unit="Laplacian variance, lower face ÷ upper face: rendered median ÷ the frames drawn on"),
    }
    verdicts = [entry[name]["pass"] for name in FIGURES]
    entry["all_targets_met"] = all(v is True for v in verdicts)
    contact_sheet(cells, folder / "contact_sheet.png",
                  caption="each cell: time, speech/pause / the footage drawn on (top) / rendered (bottom)")
    contact_sheet(faces, folder / "face_sheet.png",
                  caption="each cell: time / the footage's lower face and jaw line (top) / rendered (bottom)")
    # A script's own text may be in a writing the plot's font lacks; its name says enough.
    title = voice.name if str(voice.source).startswith("espeak:") else f"{voice.name}: {voice.source}"[:120]
    aperture_loudness_plot(folder / "aperture.png", fps=fps, rendered=aperture, baseline=baseline,
                           track=track, own=own, title=title, lag=figures["lag"])
    entry["timings"] = {k: round(v, 2) for k, v in timings.items()}
    names = ["render.mp4", "contact_sheet.png", "face_sheet.png", "aperture.png"]
    names += ["voice.wav"] if voice.path is None else []
    entry["files"] = {name: f"{folder.name}/{name}" for name in names}
    return entry


def aperture_loudness_plot(path: Path, *, fps: float, rendered: np.ndarray, baseline: np.ndarray,
                           track: Track, own: OwnMouth, title: str, lag: int | None) -> None:
    """Left: aperture over time (rendered, loudness baseline, rest and its limit; loudness
    scaled behind, pause frames shaded). Right: rendered aperture against loudness (dB) at
    the best lag."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t = np.arange(len(rendered)) / fps
    fig, (ax, scatter) = plt.subplots(1, 2, figsize=(16, 4.2), dpi=100, gridspec_kw={"width_ratios": [4, 1]})
    loud = track.loudness - track.loudness.min()
    top = own.rest + own.speaking_range
    if np.isfinite(rendered).any():
        top = max(top, float(np.nanmax(rendered)))
    if loud.size and loud.max() > 0:
        ax.fill_between(t, 0, loud / loud.max() * top, color="#d8d8d8", label="loudness, dB (scaled)")
    for k in np.flatnonzero(track.pauses):
        ax.axvspan(t[k] - 0.5 / fps, t[k] + 0.5 / fps, color="#c5e3f6", alpha=0.6, lw=0)
    ax.plot(t, rendered, color="#d62728", lw=1.3, label="rendered")
    ax.plot(t, baseline, color="#1f77b4", lw=0.8, alpha=0.7, label="loudness-only baseline")
    ax.axhline(own.rest, color="#2ca02c", lw=0.8, ls="--", label="footage rest")
    ax.axhline(own.rest_limit, color="#9467bd", lw=0.8, ls=":", label="rest + 0.2 × speaking range")
    ax.set_xlabel("time in the render (s); pause frames shaded blue")
    ax.set_ylabel("inner-lip gap / inter-ocular")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, t[-1] if len(t) > 1 else 1)
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    shift = lag or 0
    a = rendered[shift:] if shift >= 0 else rendered[:shift]
    b = track.loudness[: len(track.loudness) - shift] if shift >= 0 else track.loudness[-shift:]
    m = min(len(a), len(b))
    colours = np.where(track.speech[:m] if shift >= 0 else track.speech[-shift:][:m], "#d62728", "#7f7f7f")
    scatter.scatter(b[:m], a[:m], s=5, c=colours, alpha=0.6)
    scatter.set_xlabel(f"loudness (dB), mouth lag {shift:+d} frames")
    scatter.set_ylabel("rendered aperture (red: speech)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------- footage sound

FOOTAGE_AUDIO = ("own", "silence", "music")
MUSIC_RATE = 44100
MUSIC_BPM = 112
# C, A minor, F, G major triads (Hz), a bar of four beats each
MUSIC_CHORDS = ((261.63, 329.63, 392.00), (220.00, 261.63, 329.63), (174.61, 220.00, 261.63),
                (196.00, 246.94, 293.66))


def music(seconds: float, rate: int = MUSIC_RATE) -> np.ndarray:
    """Music without a voice, made here: a chord per bar (three notes with a few harmonics and
    a decay per beat), a bass note, a kick on every beat and a hi-hat between, at -14 dBFS RMS
    or so. Footage often carries music instead of speech; the engine must not lip-sync to it."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    beat = 60.0 / MUSIC_BPM
    position = t / beat
    in_beat = (position % 1.0) * beat  # seconds since the last beat
    chord_index = (position // 4).astype(int) % len(MUSIC_CHORDS)
    out = np.zeros(n)
    for k, chord in enumerate(MUSIC_CHORDS):
        here = chord_index == k
        for note in chord:
            for harmonic, weight in ((1, 1.0), (2, 0.35), (3, 0.15)):
                out[here] += 0.09 * weight * np.sin(2 * np.pi * note * harmonic * t[here])
        out[here] += 0.12 * np.sin(2 * np.pi * chord[0] / 2 * t[here])  # bass
    out *= 0.55 + 0.45 * np.exp(-in_beat / 0.25)
    out += 0.5 * np.sin(2 * np.pi * (50 + 90 * np.exp(-in_beat / 0.03)) * in_beat) * np.exp(-in_beat / 0.09)
    rng = np.random.default_rng(7)
    off_beat = ((position + 0.5) % 1.0) * beat
    out += 0.08 * rng.standard_normal(n) * np.exp(-off_beat / 0.02)
    return (0.5 * out / max(float(np.abs(out).max()), 1e-9)).astype(np.float32)


def footage_with_sound(video: Path, out: Path, kind: str) -> Path:
    """The footage's frames with its sound replaced by ``kind`` ("silence" or ``music``)."""
    if kind not in FOOTAGE_AUDIO[1:]:
        raise InputRejected(f"The footage's sound can be replaced by silence or music, not {kind!r}.",
                            field="footage_audio", code="footage_audio")
    with media.VideoReader(video) as reader:
        seconds = reader.frame_count / reader.fps
        sound = np.zeros(int(round(seconds * MUSIC_RATE)), np.float32) if kind == "silence" else music(seconds)
        with media.VideoWriter(out, width=reader.width, height=reader.height, fps=reader.rate, audio=sound,
                               sample_rate=MUSIC_RATE, crf=12) as writer:
            for _, frame in reader.iter_sequential():
                writer.write(reader.rgb(frame))
    return out


# ----------------------------------------------------------------------------- the whole run


def evaluate_driven(video: str | Path, voices: list[DrivingVoice], *, out: str | Path,
                    into: dict | None = None, progress: ProgressFn | None = None,
                    footage_audio: Iterable[str] = ("own",)) -> dict:
    """Prepare ``video`` as an avatar, drive it with each voice; the figures under ``driven``.

    ``into``: a self-reenactment result to add them to (both then go to ``out/eval.json``).
    ``footage_audio``: besides the footage as it is ("own"), prepare it with its sound
    replaced by "silence" or "music" and drive those avatars with the same voices (figures
    under ``footage_audio.KIND``, files under ``KIND/``): the engine then has no speech of
    this person to learn from, and its preparation report must say so.
    """
    if not voices:
        raise InputRejected("Give at least one driving voice (--drive or --drive-text).", field="drive")
    kinds = list(dict.fromkeys(footage_audio)) or ["own"]
    for kind in kinds:
        if kind not in FOOTAGE_AUDIO:
            raise InputRejected(f"The footage's sound is own, silence or music, not {kind!r}.",
                                field="footage_audio", code="footage_audio")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = dict(into or {})
    result.setdefault("video", str(video))
    # The judge hears the footage's own speech: the prepared footage's track (aligned to its
    # first frame by the normaliser) once the "own" pass made it, else the original's.
    judge_sound = Path(video)
    for kind in sorted(kinds, key=FOOTAGE_AUDIO.index):
        folder = out if kind == "own" else out / kind
        source = Path(video)
        if kind != "own":
            folder.mkdir(parents=True, exist_ok=True)
            source = footage_with_sound(Path(video), folder / f"footage-{kind}.mp4", kind)
        staged = progress if kind == "own" or progress is None else (
            lambda stage, f, kind=kind: progress(f"{kind} {stage}", f))
        entry = _drive_footage(source, voices, folder, staged, sound=None if kind == "own" else judge_sound)
        if kind == "own":
            judge_sound = folder / "avatar" / "media.mp4"
        if kind == "own":
            result.update(entry)
        else:
            result.setdefault("footage_audio", {})[kind] = entry
    result["files"] = {**result.get("files", {}), "json": "eval.json", "avatar": "avatar/",
                       "driven": "driven/NAME/ (render.mp4, contact_sheet.png, face_sheet.png, aperture.png)"}
    if len(kinds) > 1 or kinds != ["own"]:
        result["files"]["footage_audio"] = "KIND/ (footage-KIND.mp4, avatar/, driven/NAME/)"
    (out / "eval.json").write_text(json.dumps(result, indent=1), "utf-8")
    return result


def _drive_footage(source: Path, voices: list[DrivingVoice], out: Path, progress: ProgressFn | None,
                   sound: Path | None) -> dict:
    """Prepare ``source``, measure it (judged by ``sound``'s speech), drive it with each voice."""
    from .. import pipeline

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    prepared = pipeline.prepare_avatar(kind="video", source=source, workdir=out / "avatar", progress=progress)
    timings["prepare_s"] = time.perf_counter() - clock
    if prepared.library_path is None:
        raise InputRejected("The footage gave no mouth library (no face FaceMesh could follow), "
                            "so there is no lip sync to measure.", field="video")
    clock = time.perf_counter()
    footage = measure_footage(prepared.media_path, prepared.library_path, progress, sound=sound)
    timings["measure_footage_s"] = time.perf_counter() - clock

    driven = {}
    for voice in voices:
        clock = time.perf_counter()
        driven[voice.name] = drive(voice, footage, out / "driven" / voice.name, progress)
        timings[f"{voice.name}_s"] = time.perf_counter() - clock
    report = prepared.report or {}
    return {
        "footage": footage.to_json(),
        "preparation": {key: report.get(key) for key in ("mouth_timing", "own_speech_r", "usable_frames",
                                                         "total_frames", "warnings")},
        "driven": driven,
        "driven_timings": {k: round(v, 2) for k, v in timings.items()},
    }
