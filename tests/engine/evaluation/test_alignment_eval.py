"""``align-eval`` on a media folder made here: two espeak "recordings" with their word timings."""

from __future__ import annotations

import json

import pytest

from engine import speech
from engine.__main__ import main
from engine.evaluation import alignment as alignment_eval
from engine.evaluation.alignment import start_errors

pytestmark = pytest.mark.slow


def test_reference_words_pair_in_order_and_unpaired_ones_are_misses():
    aligned = [speech.WordEvent(0.50, 0.7, "Hello,"), speech.WordEvent(0.9, 1.2, "world.")]
    reference = [{"word": "hello", "start": 0.45}, {"word": "there", "start": 0.7}, {"word": "World", "start": 1.0}]
    errors = start_errors(reference, aligned)
    assert errors[0] == pytest.approx(0.05) and errors[1] is None and errors[2] == pytest.approx(-0.1)


def test_align_eval_reports_each_file_and_the_negatives(tmp_path, capsys, monkeypatch):
    # the espeak check on one sentence, not fourteen: its table is what is checked here
    monkeypatch.setattr(alignment_eval, "SYNTHETIC_SENTENCES", {"en-us": ["Bob met Pam by the maple bench."]})
    sentences = {
        "speech_en.wav": ("en", "en-us+f3", "Bob met Pam by the maple bench, and they talked about the weather."),
        "speech_de.wav": ("de", "de+f3", "Der Raum hinter diesem Portal wurde lange als Lager genutzt."),
    }
    meta = {}
    for name, (language, voice, text) in sentences.items():
        spoken = speech.synthesize(text, voice=voice, speed=1.1)
        speech.write_wav(tmp_path / name, spoken.samples, spoken.sample_rate)
        meta[name] = {"language": language, "transcript": text,
                      "words": [{"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in spoken.words]}
    (tmp_path / "speech_transcripts.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    report = tmp_path / "docs" / "alignment.md"

    assert main(["align-eval", "--media", str(tmp_path), "--report", str(report)]) == 0

    printed = capsys.readouterr().out
    assert "| speech_en.wav | en |" in printed and "| speech_de.wav | de |" in printed
    assert "2 of 2 not matched or refused" in printed
    text = report.read_text("utf-8")
    assert text.startswith("## Transcript alignment (generated)")
    assert "Written by `make align-eval`" in text and "python -m engine align-eval --media" in text
    assert "| yes |" in text  # both transcripts matched their own audio
    assert "espeak speech with exact word timings" in text
    row = next(line for line in text.splitlines() if line.startswith("| en-us |")).split("|")
    assert row[2].strip() == "21"  # seven words in each of the three recordings
    assert int(row[3].split("/")[0]) >= 18, row  # espeak speech aligns to its own word starts


def test_align_eval_without_the_transcripts_file_says_what_is_missing(tmp_path, capsys):
    assert main(["align-eval", "--media", str(tmp_path)]) == 2
    assert "speech_transcripts.json" in capsys.readouterr().err
