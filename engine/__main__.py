"""Command line for the engine: ``python -m engine COMMAND ...``.

Commands so far:

- ``speak TEXT -o out.wav`` — text (or SSML) to a 16-bit WAV, optionally with the phoneme
  and word timelines as JSON (``--timeline``).
- ``voices`` — the voices ``speak`` accepts.
- ``visemes AUDIO_OR_TEXT -o trajectory.json --plot trajectory.png`` — the per-frame mouth
  trajectory for a voice track or a script, and the picture to check it by eye.

Adding a command (``render``, ``prepare``, ``eval``, ``bench``): write ``_add_NAME(commands)``
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


# ----------------------------------------------------------------------------- entry point

COMMANDS: list[Callable] = [_add_speak, _add_voices, _add_visemes]


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
