"""engine.evaluation.run: the `eval` command end to end (on a generated talking video in
every run; on the shared real clip when it is present)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine import evaluation as ev
from engine.__main__ import main
from engine.devmedia import REAL_CLIP, shared_media
from tests import mediagen

SHARED_CLIP = shared_media(REAL_CLIP)
FIGURES = ("aperture_r", "lip_distance_ratio", "pbm_closed_share", "av_offset_difference",
           "psnr_outside_mouth_db", "jitter_ratio")


# -- the eval command ----------------------------------------------------------------------


def _check_result(result: dict, out: Path) -> None:
    for name in FIGURES:
        entry = result["figures"][name]
        assert {"value", "target", "pass"} <= set(entry)
    psnr = result["figures"]["psnr_outside_mouth_db"]["value"]
    assert psnr is not None and math.isfinite(psnr)
    ld = result["figures"]["lip_distance_ratio"]
    assert ld["static_baseline"] is not None and ld["loudness_baseline"] is not None
    assert set(ld["selection_oracles"]) == {"best_frame", "state_and_pose"}
    av = result["figures"]["av_offset_difference"]
    assert "rendered_lag" in av and "real_lag" in av
    assert result["held_out_frames"] > 0
    assert "trajectory_jaw_r" in result["diagnostics"]
    assert len(result["pbm_events"]) == result["figures"]["pbm_closed_share"]["events"]
    for name in ("eval.json", "contact_sheet.png", "aperture.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "eval.json").read_text()) == result


@pytest.mark.slow
def test_eval_command_on_a_generated_talking_video(tmp_path, capsys):
    video = mediagen.make_speaking_video(tmp_path / "talk.mp4", seconds=15.0, size=(480, 360))
    out = tmp_path / "eval"
    assert main(["eval", "--video", str(video), "--split", "10", "-o", str(out), "--no-video"]) == 0
    printed = capsys.readouterr().out
    assert "aperture r vs real" in printed and "PSNR outside mouth" in printed
    result = json.loads((out / "eval.json").read_text())
    _check_result(result, out)
    assert result["library_frames"] == 250
    assert 120 <= result["held_out_frames"] <= 126
    assert result["faces_found"]["real"] >= 0.9 * result["held_out_frames"]


def test_eval_refuses_a_split_that_leaves_nothing_to_hold_out(tmp_path, capsys):
    video = mediagen.make_talking_video(tmp_path / "short.mp4", seconds=4.0, size=(320, 240))
    assert main(["eval", "--video", str(video), "--split", "3", "-o", str(tmp_path / "e")]) == 2
    assert "leaves under 2 s" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CLIP.is_file(), reason="the shared real clip is not on this machine")
def test_eval_on_the_real_clip_reports_every_figure(tmp_path, record_property):
    out = tmp_path / "obama"
    result = ev.evaluate(SHARED_CLIP, split=20.0, out=out, write_video=False)
    _check_result(result, out)
    assert result["faces_found"]["real"] >= 0.95 * result["held_out_frames"]
    assert result["faces_found"]["rendered"] >= 0.9 * result["held_out_frames"]
    # Targets are reported, not asserted (docs/quality.md discusses the ones missed).
    for name in FIGURES:
        record_property(name, result["figures"][name]["value"])
    print("\n" + "\n".join(ev.summary_lines(result)))
