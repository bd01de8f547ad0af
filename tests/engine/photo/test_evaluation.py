"""engine.evaluation.photo: the upper-face measure undoes the head's motion, and only that."""

from __future__ import annotations

from engine.evaluation.photo import summary_lines, upper_face_ssim
from engine.photo import Animator

REST = {"jaw": 0.0, "width": 0.5, "round": 0.0, "closure": 1.0, "tuck": 0.0, "teeth": 0.0, "viseme": "sil"}


def test_upper_face_ssim_undoes_head_motion_but_sees_a_change(rig):
    animator = Animator(rig)
    still, _ = upper_face_ssim(rig.rgb, animator.frame(REST), rig.landmarks, False, rig.io)
    assert still > 0.999
    moved, warp = upper_face_ssim(rig.rgb, animator.frame(REST, pitch=2.5, roll=0.8), rig.landmarks, False, rig.io)
    assert moved >= 0.95 and abs(warp[1, 2]) > 2  # found the nod and undid it
    blink = animator.frame(REST, eyes=1.0)
    shut, _ = upper_face_ssim(rig.rgb, blink, rig.landmarks, False, rig.io)
    masked, _ = upper_face_ssim(rig.rgb, blink, rig.landmarks, True, rig.io)
    assert shut < masked and masked > 0.99  # the closed eyes count only when not masked
    forehead = rig.rgb.copy()
    y = int(rig.landmarks[10, 1]) + 10
    forehead[y:y + 12, int(rig.landmarks[234, 0]) + 10:int(rig.landmarks[454, 0]) - 10] = 0
    assert upper_face_ssim(rig.rgb, forehead, rig.landmarks, True, rig.io)[0] < 0.95


def test_summary_lines_mark_each_figure_against_its_target():
    entry = {
        "aperture_r": {"value": 0.55, "pass": True}, "lip_distance_ratio": {"value": 1.2, "pass": False},
        "upper_face_ssim": {"value": 0.97, "pass": True}, "loudness_r": {"value": 0.6, "pass": True, "lag": 1},
        "rest_in_pauses": {"value": None, "pass": None}, "blinks_per_minute": 20.0, "render_fps": 30.0,
        "source": "s", "voice": "v", "frames": 10, "fps": 25.0, "own_mouth": "o",
    }
    lines = summary_lines({"portraits": {"clip": entry}, "targets": {"aperture_r": ">= 0.5"}})
    row = next(line for line in lines if line.startswith("clip"))
    assert "0.550 ok" in row and "1.200 MISS" in row and "0.600 @+1 ok" in row and "nan ?" in row
