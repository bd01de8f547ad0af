"""Command line for the engine: ``python -m engine COMMAND ...``.

Commands:

- ``speak TEXT -o out.wav`` — text (or SSML) to a 16-bit WAV, optionally with the phoneme
  and word timelines as JSON (``--timeline``).
- ``voices`` — the voices ``speak`` accepts.
- ``visemes AUDIO_OR_TEXT -o trajectory.json --plot trajectory.png`` — the per-frame mouth
  trajectory for a voice track or a script, and the picture to check it by eye.
- ``prepare VIDEO_OR_PHOTO -o DIR`` — pre-flight checks, then ``pipeline.prepare_avatar``:
  normalised media, poster, preview, mouth library and ``DIR/avatar.json``; prints the report.
- ``render --avatar DIR (or --media M [--library L]) --text "…" | --audio A -o out.mp4`` —
  a lip-synced render, with a progress line on stderr.
- ``eval --photo --video V [--drive A.wav …]`` — photo-avatar figures (``engine/evaluation/photo.py``).
- ``eval --video V --split 20 -o DIR`` — self-reenactment figures (``engine/evaluation/``);
  ``--drive A.wav`` / ``--drive-text espeak:LANG:SCRIPT`` (repeatable): the avatar driven by
  other voices, alone or with ``--split`` (``engine/evaluation/driven.py``).
- ``bench [--long]`` — speed and memory figures (``engine/bench.py``); ``make bench``.
- ``align-eval [--media DIR] [--report F.md]`` — transcript alignment figures
  (``engine/evaluation/alignment.py``); ``make align-eval``.

Adding a command: write ``_add_NAME(commands)``
that adds a subparser and sets ``handler=`` to a function taking the parsed args and
returning an exit status, then list it in ``COMMANDS``. A handler raises ``InputRejected``
for bad input: the message goes to stderr, the exit status is 2 and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import EngineError, InputRejected
from .output import ASPECTS, FRAME_RATES, RESOLUTIONS, OutputFormat
from .timeline import LOOP_MODES

EXIT_OK, EXIT_FAILED, EXIT_REJECTED = 0, 1, 2


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder, so a failure leaves nothing behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _script_argument(value: str) -> str:
    """``@file.txt`` reads the script from a file (handy for SSML); anything else is the text."""
    if value.startswith("@") and Path(value[1:]).is_file():
        return Path(value[1:]).read_text("utf-8")
    return value


def _add_voice_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voice", default="en-us", help="voice id from `voices` (default en-us)")
    parser.add_argument("--speed", type=float, default=1.0, help="0.5–1.5, 1.0 is normal")
    parser.add_argument("--volume", type=int, default=0, help="0 (normal) to 10 (loudest)")
    parser.add_argument("--pitch", type=int, default=50, help="0–100, 50 is normal")


def _speech_from_args(args: argparse.Namespace, text: str):
    from . import speech

    return speech.synthesize(text, voice=args.voice, speed=args.speed, volume=args.volume, pitch=args.pitch)


def _timeline_json(result) -> dict:
    return {
        "duration": round(result.duration, 6),
        "sample_rate": result.sample_rate,
        "phonemes": [
            {"start": round(p.start, 6), "end": round(p.end, 6), "phoneme": p.phoneme}
            for p in result.phonemes
        ],
        "words": [{"start": round(w.start, 6), "end": round(w.end, 6), "text": w.text} for w in result.words],
    }


# ----------------------------------------------------------------------------- speak


def _speak(args: argparse.Namespace) -> int:
    from . import speech

    result = _speech_from_args(args, _script_argument(args.text))
    _write_atomically(args.output, lambda p: speech.write_wav(p, result.samples, result.sample_rate))
    if args.timeline:
        payload = json.dumps(_timeline_json(result), ensure_ascii=False, indent=1)
        _write_atomically(args.timeline, lambda p: p.write_text(payload, "utf-8"))
    print(
        f"{args.output}: {result.duration:.2f} s, {len(result.words)} words, "
        f"{sum(p.phoneme != speech.PAUSE for p in result.phonemes)} phonemes"
    )
    return EXIT_OK


def _add_speak(commands) -> None:
    parser = commands.add_parser("speak", help="text or SSML to a WAV file")
    parser.add_argument("text", help="the script (plain text or <speak>…</speak>), or @file")
    _add_voice_options(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    parser.add_argument("--timeline", type=Path, help="also write phoneme/word timings as JSON")
    parser.set_defaults(handler=_speak)


# ----------------------------------------------------------------------------- voices


def _voices(args: argparse.Namespace) -> int:
    from . import speech

    wanted = (args.language or "").lower()
    for voice in speech.list_voices():
        if voice.language.lower().startswith(wanted):
            print(f"{voice.id:28} {voice.language:18} {voice.gender:7} {voice.name}")
    return EXIT_OK


def _add_voices(commands) -> None:
    parser = commands.add_parser("voices", help="list the voices `speak` accepts")
    parser.add_argument("--language", help="only languages starting with this, e.g. en or fr-FR")
    parser.set_defaults(handler=_voices)


# ----------------------------------------------------------------------------- visemes


def _visemes(args: argparse.Namespace) -> int:
    from . import speech, visemes

    source = args.input
    as_audio = args.audio or (not args.text and Path(source).is_file() and not source.startswith("@"))
    if as_audio:
        speech.check_audio_driver(source)
        samples = speech.load_audio(source, sample_rate=16000)
        trajectory = visemes.trajectory_from_audio(samples, 16000, args.fps)
        audio, rate = samples, 16000
    else:
        spoken = _speech_from_args(args, _script_argument(source))
        trajectory = visemes.trajectory_from_speech(spoken, args.fps)
        audio, rate = spoken.samples, spoken.sample_rate
        if args.wav:
            _write_atomically(args.wav, lambda p: speech.write_wav(p, audio, rate))
    payload = trajectory.to_json()
    if args.output:
        _write_atomically(args.output, lambda p: p.write_text(payload, "utf-8"))
    if args.plot:
        from .visemes import plot_trajectory

        _write_atomically(args.plot, lambda p: plot_trajectory(trajectory, audio, rate, p))
    if not args.output and not args.plot:
        sys.stdout.write(payload + "\n")
    else:
        closed = int((trajectory.closure >= 1.0).sum())
        print(
            f"{trajectory.frame_count} frames at {trajectory.fps:g} fps "
            f"({trajectory.duration:.2f} s), {closed} closed-lip frames"
        )
    return EXIT_OK


def _add_visemes(commands) -> None:
    parser = commands.add_parser(
        "visemes", help="mouth trajectory (JSON) and its plot for a voice track or a script"
    )
    parser.add_argument("input", help="an audio file, or the script text (or @script.txt)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--audio", action="store_true", help="treat INPUT as an audio file")
    kind.add_argument("--text", action="store_true", help="treat INPUT as a script")
    parser.add_argument("--fps", type=float, default=25.0, help="output frame rate (default 25)")
    parser.add_argument("-o", "--output", type=Path, help="trajectory JSON to write")
    parser.add_argument("--plot", type=Path, help="PNG: waveform, phonemes, visemes, curves")
    parser.add_argument("--wav", type=Path, help="for a script: also write the speech WAV")
    _add_voice_options(parser)
    parser.set_defaults(handler=_visemes)


# ----------------------------------------------------------------------------- progress


class _ProgressLine:
    """``progress(stage, fraction)`` → one line on stderr, rewritten in place on a terminal."""

    def __init__(self, stream=None):
        import time

        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._time = time.monotonic
        self._start = self._time()
        self._last: tuple[str, int] | None = None

    def __call__(self, stage: str, fraction: float) -> None:
        percent = int(max(0.0, min(1.0, fraction)) * 100)
        step = percent if self._tty else percent // 25 * 25  # a log gets 0/25/50/75/100
        if self._last == (stage, step):
            return
        self._last = (stage, step)
        line = f"{stage:<12} {percent:3d}%  {self._time() - self._start:6.1f} s"
        if self._tty:
            self._stream.write("\r" + line.ljust(40))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def done(self) -> None:
        if self._tty and self._last is not None:
            self._stream.write("\n")
            self._stream.flush()


# ----------------------------------------------------------------------------- prepare

MANIFEST = "avatar.json"


def _relative(path, root: Path) -> str | None:
    if path is None:
        return None
    path = Path(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def _prepare(args: argparse.Namespace) -> int:
    from . import pipeline, preflight

    source = Path(args.source)
    if not source.is_file():
        raise InputRejected(f"There is no file at {source}.", field="source", code="missing")
    reference = Path(args.reference) if args.reference else None
    if reference is not None and not reference.is_file():
        raise InputRejected(f"There is no file at {reference}.", field="reference", code="missing")
    report = preflight.check_avatar_source(source, kind=args.kind, reference=reference)
    if not report.ok:
        if not args.no_check or report.kind is None:
            raise InputRejected(report.problems[0].message, field=report.problems[0].field,
                                code=report.problems[0].code)
        for problem in report.problems:
            print(f"warning: {problem.message}", file=sys.stderr)
    out = Path(args.output)
    progress = _ProgressLine()
    try:
        prepared = pipeline.prepare_avatar(kind=report.kind, source=source, workdir=out, progress=progress,
                                           reference=reference)
    finally:
        progress.done()
    library_report = getattr(prepared, "report", None)
    if library_report is not None and hasattr(library_report, "to_dict"):
        library_report = library_report.to_dict()
    manifest = {
        "kind": prepared.kind,
        "media": _relative(prepared.media_path, out),
        "library": _relative(getattr(prepared, "library_path", None), out),
        "poster": _relative(prepared.poster_path, out),
        "preview": _relative(prepared.preview_path, out),
        "master": _relative(getattr(prepared, "master_path", None), out),
        "width": prepared.width,
        "height": prepared.height,
        "fps": prepared.fps,
        "duration": prepared.duration,
        "frame_count": prepared.frame_count,
        "report": library_report or {},
    }
    payload = json.dumps(manifest, ensure_ascii=False, indent=1, default=str)
    _write_atomically(out / MANIFEST, lambda p: p.write_text(payload, "utf-8"))
    print(f"{out}: {prepared.kind} avatar, {prepared.width}×{prepared.height}"
          + (f", {prepared.duration:.1f} s at {prepared.fps:g} fps" if prepared.kind == "video" else ""))
    for key in ("media", "library", "poster", "preview", "master"):
        if manifest[key]:
            print(f"  {key:8} {manifest[key]}")
    if manifest["report"]:
        print("report:")
        for key, value in manifest["report"].items():
            if key == "warnings":
                for warning in value or []:
                    print(f"  warning: {warning}")
            else:
                print(f"  {key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    return EXIT_OK


def _add_prepare(commands) -> None:
    parser = commands.add_parser("prepare", help="check and prepare an avatar from a video or photo")
    parser.add_argument("source", help="the avatar's video (MP4/MOV) or photo (JPEG/PNG/WebP)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the prepared avatar")
    parser.add_argument("--kind", choices=("video", "photo"), help="what SOURCE is (default: from its bytes)")
    parser.add_argument("--reference", type=Path, metavar="PHOTO",
                        help="a photo of the person who should speak, when the footage shows several faces")
    parser.add_argument("--no-check", action="store_true",
                        help="prepare even if pre-flight rules fail (face size, duration, …); warn instead")
    parser.set_defaults(handler=_prepare)


# ----------------------------------------------------------------------------- render


def _intervals(value: str | None) -> list[tuple[float, float]]:
    """``"1-2,3.5-4"`` → [(1.0, 2.0), (3.5, 4.0)] (seconds)."""
    if not value:
        return []
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            start, end = (float(v) for v in part.split("-", 1))
        except ValueError:
            raise InputRejected(
                f"--disable takes seconds like 1-2,3.5-4; {part!r} is not a range.",
                field="disable_intervals", code="disable_intervals",
            ) from None
        if not 0 <= start < end:
            raise InputRejected(
                f"--disable range {part!r} must start at 0 or later and end after it starts.",
                field="disable_intervals", code="disable_intervals",
            )
        out.append((start, end))
    return out


def _avatar_files(args: argparse.Namespace) -> tuple[str, Path, Path | None, Path | None]:
    """(kind, media, library, master) from --avatar DIR or --media/--library (no master)."""
    from . import media as media_io

    if args.avatar is not None:
        root = Path(args.avatar)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise InputRejected(f"{root} is not a prepared avatar (no {MANIFEST}); run `prepare` first.",
                                field="avatar", code="no_avatar")
        manifest = json.loads(manifest_path.read_text("utf-8"))
        media_path = root / manifest["media"]
        library = root / manifest["library"] if manifest.get("library") else None
        master = root / manifest["master"] if manifest.get("master") else None
        kind = manifest["kind"]
    else:
        media_path = Path(args.media)
        library = Path(args.library) if args.library else None
        master = None
        kind = "photo" if media_io.is_image_type(media_io.sniff_type(media_path)) else "video"
    if not media_path.is_file():
        raise InputRejected(f"The avatar media {media_path} is missing.", field="avatar", code="no_media")
    if library is not None and not library.exists():
        raise InputRejected(f"The mouth library {library} is missing.", field="avatar", code="no_library")
    return kind, media_path, library, master if master is not None and master.is_file() else None


def _render(args: argparse.Namespace) -> int:
    from . import pipeline

    if (args.text is None) == (args.audio is None):
        raise InputRejected("Give either --text or --audio.", field="script", code="no_driver")
    if args.transcript is not None and args.audio is None:
        raise InputRejected("--transcript goes with --audio: a script is its own transcript.",
                            field="transcript", code="transcript_without_audio")
    kind, media_path, library, master = _avatar_files(args)
    if args.loop == "custom" and args.start is None and args.end is None:
        raise InputRejected("--loop custom needs --start and/or --end (seconds).", field="loop_mode",
                            code="segment")
    output = Path(args.output)
    request = pipeline.RenderRequest(
        avatar_kind=kind,
        avatar_media=media_path,
        avatar_master=master,
        output=output,
        poster=Path(args.poster) if args.poster else output.with_suffix(".jpg"),
        text=_script_argument(args.text) if args.text is not None else None,
        audio=Path(args.audio) if args.audio is not None else None,
        voice=args.voice,
        speed=args.speed,
        volume=args.volume,
        loop_mode=args.loop,
        library=library,
        segment_start=args.start,
        segment_end=args.end,
        disable_intervals=_intervals(args.disable),
        captions=not args.no_captions,
        transcript=_script_argument(args.transcript) if args.transcript is not None else None,
        output_format=OutputFormat(
            resolution=args.resolution, aspect=args.aspect, upscale=args.upscale, fps=args.fps,
            match_bitrate=int(args.bitrate * 1_000_000) if args.bitrate else None,
        ),
        fps=args.fps,
        caption_style=_caption_style(args.burn_captions),
        preview_seconds=pipeline.PREVIEW_SECONDS if args.preview else None,
    )
    progress = _ProgressLine()
    try:
        result = pipeline.render(request, progress=progress)
    finally:
        progress.done()
    print(
        f"{result.video_path}: {result.duration:.2f} s, {result.width}×{result.height} "
        f"at {result.fps:g} fps, {result.frame_count} frames; poster {result.poster_path}"
    )
    if result.srt_path is not None:
        machine = " (machine-transcribed)" if result.captions_source == "machine" else ""
        print(f"captions{machine} {result.srt_path} {result.vtt_path}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _caption_style(value: str | None):
    if value is None:
        return None
    from .burnin import caption_style

    parts = [part.strip() for part in value.split(",")] if value else []
    return caption_style(*parts)


def _add_render(commands) -> None:
    parser = commands.add_parser("render", help="render a lip-synced video of an avatar")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--avatar", type=Path, help="a folder made by `prepare`")
    which.add_argument("--media", type=Path, help="prepared media (MP4 or PNG) without a prepared folder")
    parser.add_argument("--library", type=Path, help="with --media: the mouth library it was prepared with")
    parser.add_argument("--text", help="the script (or @script.txt)")
    parser.add_argument("--audio", type=Path, help="a voice track (WAV/MP3/M4A/…)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="MP4 to write")
    parser.add_argument("--poster", type=Path, help="poster JPEG (default: next to the output)")
    parser.add_argument("--no-captions", action="store_true",
                        help="skip the captions (by default OUTPUT.srt and OUTPUT.vtt)")
    parser.add_argument("--transcript", help="with --audio: the words spoken (or @transcript.txt); "
                        "--voice then names their language")
    parser.add_argument("--burn-captions", nargs="?", const="", metavar="POSITION,SIZE,LOOK",
                        help="draw the captions into the picture: bottom|middle|top, small|medium|large, "
                        "outline|box (default bottom,medium,outline)")
    parser.add_argument("--resolution", type=int, choices=RESOLUTIONS, help="short edge (default: the avatar's)")
    parser.add_argument("--aspect", default="keep", choices=tuple(ASPECTS), help="crop around the face to this shape")
    parser.add_argument("--upscale", action="store_true", help="allow a resolution above the avatar's")
    parser.add_argument("--fps", type=int, choices=FRAME_RATES, help="frame rate (default: the avatar's)")
    parser.add_argument("--bitrate", type=float, metavar="MBPS",
                        help="encode at this bitrate (clamped to 1–9 Mbps) instead of constant quality (CRF 17)")
    parser.add_argument("--preview", action="store_true", help="only the first 3 seconds, to check quickly")
    parser.add_argument("--loop", default="reverse", choices=LOOP_MODES,
                        help="how the footage continues when the speech is longer (default reverse)")
    parser.add_argument("--start", type=float, help="custom loop: segment start (seconds)")
    parser.add_argument("--end", type=float, help="custom loop: segment end (seconds)")
    parser.add_argument("--disable", help="output intervals without lip sync, seconds: 1-2,3.5-4")
    parser.add_argument("--voice", default="en-us",
                        help="voice id from `voices` (default en-us); with --audio, the language spoken")
    parser.add_argument("--speed", type=float, default=1.0, help="0.5–1.5, 1.0 is normal")
    parser.add_argument("--volume", type=int, default=0, help="0 (normal) to 10 (loudest)")
    parser.set_defaults(handler=_render)


# ----------------------------------------------------------------------------- eval


def _eval(args: argparse.Namespace) -> int:
    from . import evaluation

    if args.photo:
        return _eval_photo(args)
    video = Path(args.video)
    if not video.is_file():
        raise InputRejected(f"There is no file at {video}.", field="video", code="missing")
    voices = evaluation.driving_voices(args.drive, args.drive_text)
    split = 20.0 if args.split is None and not voices else args.split
    out = Path(args.output) if args.output else Path("var/eval") / video.stem
    progress = _ProgressLine()
    result = None
    try:
        if split is not None:
            result = evaluation.evaluate(video, split=split, end=args.end, out=out, progress=progress,
                                         write_video=not args.no_video)
        if voices:
            result = evaluation.evaluate_driven(video, voices, out=out, into=result, progress=progress,
                                                footage_audio=["own", *args.footage_audio])
    finally:
        progress.done()
    lines = []
    if split is not None:
        lines.append(f"{video.name}: library {result['library_frames']} frames, "
                     f"held out {result['held_out_frames']} frames at {result['fps']:g} fps")
        lines.extend(evaluation.summary_lines(result))
    if voices:
        from .evaluation.report import footage_audio_summary_lines, preparation_line

        lines.append(f"{video.name} driven by {len(voices)} voice(s):")
        lines.append(preparation_line(result))
        lines.extend(evaluation.driven_summary_lines(result))
        lines.extend(footage_audio_summary_lines(result))
    print("\n".join(lines))
    print(f"written to {out}/: " + ", ".join(result["files"].values()))
    if args.report:
        _write_eval_report(args.report, lines)
        print(f"report written to {args.report}")
    return EXIT_OK


def _write_eval_report(path: Path, lines: list[str]) -> None:
    """The printed figures as a Markdown page, with the command that made them and when."""
    import datetime
    import shlex

    from .devmedia import shared_media

    # The shared media's place differs per machine; the page names it by its variable.
    folders = sorted({str(shared_media()), os.path.normpath(str(shared_media())), str(shared_media().resolve())},
                     key=len, reverse=True)
    arguments = [shlex.quote(arg) for arg in sys.argv[1:]]
    for folder in folders:
        arguments = [arg.replace(folder, "$STUDIO_SHARED_MEDIA") for arg in arguments]
    command = "python -m engine " + " ".join(arguments)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Lip-sync figures (generated)\n\n"
        "Written by `make eval`; do not edit by hand: run it again after changing anything the\n"
        "figures depend on. What each figure means, and why some targets are missed: quality.md.\n\n"
        f"Measured {when} (load average {load:.1f}) with:\n\n```\n{command}\n```\n\n"
        "```\n" + "\n".join(lines) + "\n```\n"
    )


def _add_eval(commands) -> None:
    parser = commands.add_parser(
        "eval", help="lip-sync figures: self-reenactment on a real talking video, and/or driven by any voice"
    )
    parser.add_argument("--video", type=Path, required=True, help="a real talking-head video with its speech")
    parser.add_argument("--split", type=float,
                        help="self-reenactment: seconds of footage for the library; the rest is held out "
                             "(default 20; without --drive/--drive-text it always runs)")
    parser.add_argument("--end", type=float, help="stop the held-out part here (seconds)")
    parser.add_argument("--drive", type=Path, action="append", default=[], metavar="AUDIO",
                        help="driven mode: render this voice track onto the whole footage (repeatable)")
    parser.add_argument("--drive-text", action="append", default=[], metavar="espeak:LANG:SCRIPT",
                        help="driven mode: an espeak script as the voice, e.g. 'espeak:fr:Bonjour.' "
                             "(repeatable)")
    parser.add_argument("--footage-audio", action="append", default=[], choices=("silence", "music"),
                        help="driven mode: also prepare the footage with its own sound replaced by silence "
                             "or by music made in code, and drive it with the same voices (repeatable)")
    parser.add_argument("-o", "--output", type=Path,
                        help="folder for eval.json and pictures (default var/eval/NAME)")
    parser.add_argument("--no-video", action="store_true", help="skip the side-by-side compare.mp4")
    parser.add_argument("--report", type=Path, metavar="FILE.md",
                        help="also write the figures, the command and the date to this Markdown file")
    parser.add_argument("--photo", action="store_true",
                        help="photo avatars instead: frame 0 of --video as the photo, driven by its own sound "
                             "and compared with the real frames, plus two more portraits driven by the --drive "
                             "tracks (engine/evaluation/photo.py)")
    parser.set_defaults(handler=_eval)


def _eval_photo(args: argparse.Namespace) -> int:
    from .evaluation import photo as photo_eval

    video = Path(args.video)
    if not video.is_file():
        raise InputRejected(f"There is no file at {video}.", field="video", code="missing")
    out = Path(args.output) if args.output else Path("var/eval/photo")
    progress = _ProgressLine()
    try:
        result = photo_eval.evaluate_photo(out=out, clip=video, voices=args.drive, progress=progress)
    finally:
        progress.done()
    lines = photo_eval.summary_lines(result)
    print("\n".join(lines))
    print(f"written to {out}/: " + ", ".join(result["files"].values()))
    if args.report:
        photo_eval.write_report(args.report, result, lines, out)
        print(f"report written to {args.report}")
    return EXIT_OK


# ----------------------------------------------------------------------------- align-eval


def _align_eval(args: argparse.Namespace) -> int:
    from .devmedia import shared_media
    from .evaluation import alignment as evaluation

    media = args.media or shared_media()
    if not args.calibrate and not (media / evaluation.TRANSCRIPTS).is_file():
        raise InputRejected(f"No {evaluation.TRANSCRIPTS} in {media}: give the folder with --media.")
    if args.calibrate:
        print("\n".join(evaluation.calibration_lines(*evaluation.calibrate())))
        return EXIT_OK
    report = evaluation.evaluate(media)
    print("\n".join(evaluation.table(report)))
    if args.report:
        shown = args.media
        if args.media and Path(args.media).resolve() == shared_media().resolve():
            shown = "$STUDIO_SHARED_MEDIA"  # the docs don't name a machine's folders
        command = "python -m engine align-eval" + (f" --media {shown}" if shown else "")
        text = evaluation.markdown(report, command)
        _write_atomically(args.report, lambda path: path.write_text(text, "utf-8"))
    return EXIT_OK


def _add_align_eval(commands) -> None:
    parser = commands.add_parser(
        "align-eval", help="transcript alignment on recorded sentences with known word timings"
    )
    parser.add_argument("--media", type=Path, help="folder with speech_*.wav and speech_transcripts.json "
                        "(default: the shared media folder)")
    parser.add_argument("--report", type=Path, metavar="FILE.md", help="also write the table to this Markdown file")
    parser.add_argument("--calibrate", action="store_true",
                        help="instead: the mismatch-cost calibration on espeak speech (a few minutes)")
    parser.set_defaults(handler=_align_eval)


def _eval_sheet(args: argparse.Namespace) -> int:
    from .evaluation.plots import language_sheet

    names = language_sheet(Path(args.folder) / "driven", args.output)
    print(f"{args.output}: {', '.join(names)}")
    return EXIT_OK


def _add_eval_sheet(commands) -> None:
    parser = commands.add_parser("eval-sheet", help="one contact sheet of every driving voice of an eval run")
    parser.add_argument("folder", type=Path, help="the eval's output folder (with driven/NAME/face_sheet.png)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.set_defaults(handler=_eval_sheet)


# ----------------------------------------------------------------------------- bench


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.run(long=args.long, output=args.output, workdir=args.workdir, source=args.source,
                     seconds=args.seconds, repeat=args.repeat)


def _add_bench(commands) -> None:
    parser = commands.add_parser(
        "bench", help="render speed and memory against the product's targets (docs/quality.md)"
    )
    parser.add_argument("--long", action="store_true", help="also the 5-minute 1080p render memory check")
    parser.add_argument("-o", "--output", type=Path, default=Path("var/bench/bench.json"),
                        help="JSON to write (default var/bench/bench.json)")
    parser.add_argument("--workdir", type=Path, help="keep the media here (default: a temporary folder)")
    parser.add_argument("--source", type=Path, help="talking video to build the 720p source from "
                        "(default: the shared Obama clip if present, else a generated one)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of the re-encode and of the render each, alternating; the fastest counts")
    parser.add_argument("--seconds", type=float, default=30.0, help=argparse.SUPPRESS)  # smoke tests only
    parser.set_defaults(handler=_bench)


# ----------------------------------------------------------------------------- entry point

COMMANDS: list[Callable] = [
    _add_speak, _add_voices, _add_visemes, _add_prepare, _add_render, _add_eval, _add_bench,
    _add_align_eval, _add_eval_sheet,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Avatar Studio engine")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputRejected as rejected:
        print(f"error: {rejected}", file=sys.stderr)
        return EXIT_REJECTED
    except EngineError as failure:
        print(f"failed: {failure}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
