"""engine.visemes.plot: the trajectory picture."""

from __future__ import annotations

from engine import speech, visemes

from .helpers import BILABIAL_SENTENCE


def test_plot_is_written(tmp_path):
    result = speech.synthesize(BILABIAL_SENTENCE)
    trajectory = visemes.trajectory_from_speech(result, 25)
    out = tmp_path / "trajectory.png"
    visemes.plot_trajectory(trajectory, result.samples, result.sample_rate, out)
    from PIL import Image

    with Image.open(out) as image:
        assert image.format == "PNG" and image.width >= 1000 and image.height >= 800
