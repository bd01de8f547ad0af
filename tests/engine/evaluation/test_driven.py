"""engine.evaluation.driven: the driven figures on known series, the CLI's modes, and one
driven run end to end (a generated talking video, an espeak voice)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine import evaluation as ev
from engine.__main__ import main
from engine.devmedia import REAL_CLIP, shared_media
from engine.errors import InputRejected
from engine.evaluation import driven
from engine.evaluation.report import judge
from tests import mediagen

FPS = 30.0
SHARED_CLIP = shared_media(REAL_CLIP)
SHARED_VOICE = shared_media("speech_en.wav")


def _voice_like(seed: int = 0):
    """A loudness track (dB) on a 30 fps clock: 1.5 s speech, 0.6 s pause, 1.5 s speech,
    0.6 s pause, 1 s speech; syllables modulate the level between about −32 and −13 dB, the
    pauses sit at the −40 dB floor."""
    rng = np.random.default_rng(seed)
    speech = np.concatenate([np.ones(45), np.zeros(18), np.ones(45), np.zeros(18), np.ones(30)]).astype(bool)
    t = np.arange(len(speech)) / FPS
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))
    loudness = np.where(speech, -30 + 15 * syllables + rng.normal(0, 1, len(t)), -40.0)
    return loudness, speech, driven.pause_mask(speech, FPS)


def _following(loudness):
    """A mouth that opens in proportion to the loudness (dB above the floor): rest in pauses."""
    return OWN.rest + OWN.speaking_range * (loudness + 40) / 28


OWN = driven.OwnMouth(rest=0.03, speaking_range=0.10, speech_median=0.08, speech_p90=0.13, rest_frames=40,
                      rest_from="pauses")


# -- the metric functions ----------------------------------------------------------------------


def test_pause_mask_keeps_long_pauses_less_their_settling_edges():
    speech = np.ones(60, dtype=bool)
    speech[10:25] = False  # 0.5 s: a pause
    speech[30:35] = False  # 0.17 s: a gap between words, not a pause
    pauses = driven.pause_mask(speech, FPS)
    # 100 ms = 3 frames skipped at each end of the pause
    assert np.flatnonzero(pauses).tolist() == list(range(13, 22))
    # a pause at the very end counts too
    tail = np.ones(30, dtype=bool)
    tail[20:] = False
    assert np.flatnonzero(driven.pause_mask(tail, FPS)).tolist() == [23, 24, 25, 26]


def test_speech_mask_marks_frames_inside_the_regions():
    mask = driven.speech_mask([(0.1, 0.2), (0.5, 0.6)], 10.0, 8)
    assert mask.tolist() == [False, True, False, False, False, True, False, False]


def test_loudness_db_floors_silence_40_db_under_the_loud_level():
    envelope = np.array([0.0, 1e-6, 0.1, 0.5, 1.0] * 20)
    db = driven.loudness_db(envelope)
    assert db.max() == pytest.approx(0.0)
    assert db.min() == pytest.approx(-40.0)


def test_a_mouth_that_follows_loudness_scores_r_near_1_and_rests_in_pauses():
    loudness, speech, pauses = _voice_like()
    figures = driven.mouth_figures(_following(loudness), loudness, speech, pauses, OWN)
    assert figures["loudness_r"] == pytest.approx(1.0) and figures["lag"] == 0
    assert figures["rest_in_pauses"] == 1.0 and figures["pause_frames_judged"] == pauses.sum() > 0
    assert judge("loudness_r", figures["loudness_r"]) and judge("rest_in_pauses", figures["rest_in_pauses"])


def test_a_constant_open_mouth_fails_rest():
    loudness, speech, pauses = _voice_like()
    figures = driven.mouth_figures(np.full(len(speech), 0.12), loudness, speech, pauses, OWN)
    assert figures["rest_in_pauses"] == 0.0
    assert judge("rest_in_pauses", figures["rest_in_pauses"]) is False
    assert math.isnan(figures["loudness_r"]) and judge("loudness_r", figures["loudness_r"]) is None
    assert figures["opening_median_ratio"] == pytest.approx(0.12 / 0.08)
    assert judge("opening_median_ratio", figures["opening_median_ratio"]) is False  # 1.5: too wide


def test_the_lag_search_finds_a_mouth_that_comes_after_the_sound():
    loudness, speech, pauses = _voice_like(seed=3)
    follows = _following(loudness)
    late = np.concatenate([np.full(2, OWN.rest), follows[:-2]])  # the mouth 2 frames after the sound
    figures = driven.mouth_figures(late, loudness, speech, pauses, OWN)
    assert figures["lag"] == 2 and figures["loudness_r"] > 0.99
    early = np.concatenate([follows[3:], np.full(3, OWN.rest)])
    assert driven.mouth_figures(early, loudness, speech, pauses, OWN)["lag"] == -3
    too_late = np.concatenate([np.full(6, OWN.rest), follows[:-6]])  # outside ±3 frames
    assert driven.mouth_figures(too_late, loudness, speech, pauses, OWN)["loudness_r"] < 0.9


def test_the_loudness_mouth_spans_rest_to_the_speaking_range():
    loudness, speech, _ = _voice_like()
    mouth = driven.loudness_mouth(loudness, speech, OWN)
    assert np.all(mouth[~speech] == OWN.rest)
    assert mouth[speech].min() == pytest.approx(OWN.rest)
    assert mouth[speech].max() == pytest.approx(OWN.rest + OWN.speaking_range)


def test_own_mouth_takes_rest_from_the_pauses_and_falls_back_to_all_frames():
    _, speech, pauses = _voice_like()
    aperture = np.where(speech, 0.10, 0.02)
    aperture[speech.nonzero()[0][::4]] = 0.20
    own = driven.own_mouth(aperture, speech, pauses)
    assert own.rest == pytest.approx(0.02) and own.rest_from == "pauses"
    assert own.speech_p90 == pytest.approx(0.20) and own.speech_median == pytest.approx(0.10)
    assert own.speaking_range == pytest.approx(0.18)
    assert own.rest_limit == pytest.approx(0.02 + 0.2 * 0.18)
    no_pauses = driven.own_mouth(aperture, speech, np.zeros_like(pauses))
    assert no_pauses.rest_from == "all frames" and no_pauses.rest_frames == len(aperture)
    with pytest.raises(InputRejected):
        driven.own_mouth(np.full(10, np.nan), speech[:10], pauses[:10])


def test_driving_voices_are_named_in_snake_case_and_scripts_are_parsed(tmp_path):
    track = tmp_path / "JFK Inaugural.wav"
    track.write_bytes(b"RIFF")
    voices = ev.driving_voices([track], ["espeak:en-us:Hello there.", "espeak:en-us:Again: twice."])
    assert [v.name for v in voices] == ["jfk_inaugural", "espeak_en_us", "espeak_en_us_2"]
    assert voices[2].voice == "en-us" and voices[2].text == "Again: twice."
    assert voices[1].source == "espeak:en-us:Hello there."
    with pytest.raises(InputRejected):
        ev.driving_voices([], ["festival:en:Hello"])
    with pytest.raises(InputRejected):
        ev.driving_voices([tmp_path / "missing.wav"])


def test_within_targets_are_judged_and_shown():
    assert judge("opening_p90_ratio", 1.0) and judge("opening_p90_ratio", 0.75)
    assert judge("opening_p90_ratio", 1.3) is False
    assert ev.report.target_text("opening_median_ratio") == "0.75–1.25"


# -- the eval command's modes --------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """The two evaluations replaced by stand-ins that record how they were called."""
    calls = []

    def evaluate(video, *, split, end, out, progress, write_video):
        calls.append(("split", split))
        return {"library_frames": 1, "held_out_frames": 1, "fps": 25.0, "figures": {},
                "files": {"json": "eval.json"}}

    def evaluate_driven(video, voices, *, out, into, progress, footage_audio):
        calls.append(("driven", [v.name for v in voices], into is not None))
        if list(footage_audio) != ["own"]:
            calls.append(("footage_audio", list(footage_audio)))
        return {**(into or {}), "driven": {}, "files": {"json": "eval.json"}}

    monkeypatch.setattr(ev, "evaluate", evaluate)
    monkeypatch.setattr(ev, "evaluate_driven", evaluate_driven)
    monkeypatch.setattr(ev, "summary_lines", lambda result: ["self-reenactment table"])
    monkeypatch.setattr(ev, "driven_summary_lines", lambda result: ["driven table"])
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    return calls, video


def test_eval_without_drive_runs_self_reenactment_at_20_s(recorded, capsys):
    calls, video = recorded
    assert main(["eval", "--video", str(video), "-o", str(video.parent / "e")]) == 0
    assert calls == [("split", 20.0)]
    assert "driven table" not in capsys.readouterr().out


def test_eval_with_drive_alone_runs_only_the_driven_mode(recorded, capsys):
    calls, video = recorded
    args = ["eval", "--video", str(video), "--drive-text", "espeak:de:Guten Tag.",
            "-o", str(video.parent / "e")]
    assert main(args) == 0
    assert calls == [("driven", ["espeak_de"], False)]
    printed = capsys.readouterr().out
    assert "driven table" in printed and "self-reenactment table" not in printed


def test_eval_with_split_and_drive_runs_both_into_one_result(recorded, capsys):
    calls, video = recorded
    args = ["eval", "--video", str(video), "--split", "12", "--drive-text", "espeak:fr:Bonjour.",
            "-o", str(video.parent / "e")]
    assert main(args) == 0
    assert calls == [("split", 12.0), ("driven", ["espeak_fr"], True)]
    printed = capsys.readouterr().out
    assert "driven table" in printed and "self-reenactment table" in printed


def test_eval_with_footage_audio_drives_the_footage_with_its_sound_replaced_too(recorded, capsys):
    calls, video = recorded
    args = ["eval", "--video", str(video), "--drive-text", "espeak:fr:Bonjour.", "--footage-audio", "silence",
            "--footage-audio", "music", "-o", str(video.parent / "e")]
    assert main(args) == 0
    assert calls == [("driven", ["espeak_fr"], False), ("footage_audio", ["own", "silence", "music"])]


def test_eval_refuses_a_malformed_driving_script(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    assert main(["eval", "--video", str(video), "--drive-text", "hello", "-o", str(tmp_path / "e")]) == 2
    assert "espeak:LANG:SCRIPT" in capsys.readouterr().err


# -- end to end ------------------------------------------------------------------------------


def _check_driven(result: dict, out, names) -> None:
    assert set(result["driven"]) == set(names)
    footage = result["footage"]
    for key in ("rest", "speaking_range", "speech_median", "speech_p90", "frames", "speech_frames"):
        assert footage[key] is not None
    for name in names:
        voice = result["driven"][name]
        for key in ("frames", "speech_frames", "pause_frames", "faces_found", "all_targets_met"):
            assert key in voice
        assert voice["frames"] > 0 and voice["speech_frames"] > 0
        for reference in (voice, voice["loudness_baseline"], voice["footage_baseline"]):
            for figure in driven.FIGURES:
                assert {"value", "target", "pass"} <= set(reference[figure])
        assert "lag" in voice["loudness_r"] and "linear_loudness_r" in voice["loudness_r"]
        for file in voice["files"].values():
            assert (out / "driven" / file).stat().st_size > 0
    assert json.loads((out / "eval.json").read_text()) == result


@pytest.mark.slow
def test_driven_eval_command_on_a_generated_talking_video(tmp_path, capsys):
    video = mediagen.make_talking_video(tmp_path / "talk.mp4", seconds=6, size=(320, 240))
    out = tmp_path / "driven"
    args = ["eval", "--video", str(video), "-o", str(out),
            "--drive-text", "espeak:en-us:Hello there. The mouth should follow me."]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "loudness r (lag)" in printed and "espeak_en_us" in printed and "loudness only" in printed
    result = json.loads((out / "eval.json").read_text())
    _check_driven(result, out, ["espeak_en_us"])
    voice = result["driven"]["espeak_en_us"]
    assert voice["pause_frames"] > 0  # the 0.5 s of silence around a script
    assert voice["faces_found"] >= 0.9 * voice["frames"]
    assert (out / "driven" / "espeak_en_us" / "voice.wav").is_file()
    assert "figures" not in result  # no self-reenactment without --split


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_CLIP.is_file() and SHARED_VOICE.is_file()),
                    reason="the shared real clip and voice are not on this machine")
def test_driven_eval_on_the_real_clip_reports_every_figure(tmp_path, record_property):
    out = tmp_path / "obama"
    result = ev.evaluate_driven(SHARED_CLIP, ev.driving_voices([SHARED_VOICE]), out=out)
    _check_driven(result, out, ["speech_en"])
    voice = result["driven"]["speech_en"]
    assert voice["faces_found"] >= 0.95 * voice["frames"]
    # Targets are reported, not asserted (the renderer's figures move as it changes).
    for figure in driven.FIGURES:
        record_property(figure, voice[figure]["value"])
    print("\n" + "\n".join(ev.driven_summary_lines(result)))
