"""``python -m engine visemes``: a trajectory and its plot for a script or a voice track."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from engine import speech, visemes
from engine.devmedia import PROJECT_ROOT

from .helpers import BILABIAL_SENTENCE


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_visemes_for_a_script(tmp_path):
    out, plot, wav = tmp_path / "t.json", tmp_path / "t.png", tmp_path / "t.wav"
    result = _cli(
        "visemes",
        BILABIAL_SENTENCE,
        "--fps",
        "30",
        "-o",
        str(out),
        "--plot",
        str(plot),
        "--wav",
        str(wav),
        "--voice",
        "en-us+f3",
    )
    assert result.returncode == 0, result.stderr
    trajectory = visemes.Trajectory.from_json(out.read_text())
    assert trajectory.fps == 30 and "PP" in trajectory.visemes
    assert plot.stat().st_size > 20_000 and wav.stat().st_size > 20_000


def test_cli_visemes_for_a_voice_track(tmp_path):
    track = tmp_path / "voice.wav"
    spoken = speech.synthesize('<speak>Hello world. <break time="600ms"/> Good bye.</speak>')
    speech.write_wav(track, spoken.samples, spoken.sample_rate)
    out = tmp_path / "t.json"
    result = _cli("visemes", str(track), "-o", str(out))
    assert result.returncode == 0, result.stderr
    trajectory = visemes.Trajectory.from_json(out.read_text())
    assert trajectory.frame_count == int(np.ceil(spoken.duration * 25))
    assert trajectory.phonemes and all(p.phoneme.isupper() for p in trajectory.phonemes)


def test_cli_visemes_bad_input_writes_nothing(tmp_path):
    out, plot = tmp_path / "t.json", tmp_path / "t.png"
    silent = tmp_path / "silent.wav"
    speech.write_wav(silent, np.zeros(32000, np.float32), 16000)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("hello " * 200)
    for args in (
        ["   ", "--text"],
        ["Hi"],
        [str(silent)],
        [str(not_audio)],
        ["Hello there", "--speed", "0.2"],
    ):
        result = _cli("visemes", *args, "-o", str(out), "--plot", str(plot))
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        assert not out.exists() and not plot.exists()
    assert list(tmp_path.iterdir()) == [silent, not_audio] or set(tmp_path.iterdir()) == {silent, not_audio}
