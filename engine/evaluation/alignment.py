"""Transcript alignment against recorded speech with known word timings (``python -m engine align-eval``).

For each ``speech_*.wav`` in the media folder, with ``speech_transcripts.json`` (language,
transcript, reference words with start/end): the transcript is aligned
(``speech.align_transcript``) and each reference word is paired, in order, with the aligned
word of the same spelling. Figures: the share of reference word starts within ±100 ms, the
median absolute start error (a reference word left unpaired counts as a miss), the cost and
whether the transcript was taken to match. Negatives: every transcript against every other
file's audio, which must come out not matched (or be refused as too long).

Four recordings are few, and their reference timings follow one labeller's conventions, so the
same figures are also taken on espeak speech in seven languages (``evaluate_synthetic``): other
voice variants, speeds, pitches, a room, a telephone band, whose word starts espeak gives
exactly (the start of each word's first phoneme). A change that helps the recordings but not
speech in general shows there.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputRejected

TOLERANCE_S = 0.100
TARGET_SHARE = 0.90
# espeak voices for the languages the benchmark holds
VOICE_FOR_LANGUAGE = {"en": "en-us", "de": "de", "es": "es", "ja": "ja", "fr": "fr"}
TRANSCRIPTS = "speech_transcripts.json"


@dataclass
class FileFigures:
    name: str
    language: str
    words: int
    within: int
    median_error_ms: float | None
    cost: float | None  # None: the transcript could not be aligned at all
    matched: bool
    seconds: float  # time the alignment took
    audio_seconds: float

    @property
    def share(self) -> float:
        return self.within / self.words if self.words else 0.0


@dataclass
class SyntheticFigures:
    voice: str
    words: int
    within: int
    median_error_ms: float | None

    @property
    def share(self) -> float:
        return self.within / self.words if self.words else 0.0


@dataclass
class Report:
    files: list[FileFigures] = field(default_factory=list)
    negatives: list[tuple[str, str, str]] = field(default_factory=list)  # (transcript of, audio, outcome)
    synthetic: list[SyntheticFigures] = field(default_factory=list)

    @property
    def negatives_rejected(self) -> int:
        return sum(outcome != "matched" for _, _, outcome in self.negatives)


def _normalised(text: str) -> str:
    return re.sub(r"[^\w]", "", text.lower())


def start_errors(reference: list[dict], aligned) -> list[float | None]:
    """Per reference word, aligned start − reference start (None if no aligned word pairs with it)."""
    errors: list[float | None] = []
    cursor = 0
    for word in reference:
        key = _normalised(word["word"])
        found = None
        for index in range(cursor, len(aligned)):
            if _normalised(aligned[index].text) == key:
                found = index
                break
        if found is None:
            errors.append(None)
            continue
        errors.append(aligned[found].start - float(word["start"]))
        cursor = found + 1
    return errors


def evaluate(media: Path) -> Report:
    from ..speech import align_transcript, load_audio

    meta = json.loads((media / TRANSCRIPTS).read_text("utf-8"))
    names = sorted(name for name in meta if (media / name).is_file())
    audio = {name: load_audio(media / name, sample_rate=16000) for name in names}
    # First: espeak's pitch flutter carries its phase from one call to the next, so its
    # "recordings" come out a little different after other speech, and so would the figures.
    report = Report(synthetic=evaluate_synthetic())
    for name in names:
        entry = meta[name]
        voice = VOICE_FOR_LANGUAGE.get(entry["language"], entry["language"])
        started = time.perf_counter()
        result = align_transcript(audio[name], 16000, entry["transcript"], voice=voice)
        took = time.perf_counter() - started
        errors = start_errors(entry["words"], result.words)
        found = [abs(e) for e in errors if e is not None]
        report.files.append(FileFigures(
            name=name, language=entry["language"], words=len(errors),
            within=sum(e is not None and abs(e) <= TOLERANCE_S for e in errors),
            median_error_ms=round(statistics.median(found) * 1000, 1) if found else None,
            cost=result.cost, matched=result.matched, seconds=took, audio_seconds=len(audio[name]) / 16000,
        ))
    for name in names:
        entry = meta[name]
        voice = VOICE_FOR_LANGUAGE.get(entry["language"], entry["language"])
        for other in names:
            if other == name:
                continue
            try:
                result = align_transcript(audio[other], 16000, entry["transcript"], voice=voice)
                outcome = "matched" if result.matched else "not matched"
            except InputRejected as rejected:
                outcome = f"refused ({rejected.code})"
            report.negatives.append((name, other, outcome))
    return report


def table(report: Report) -> list[str]:
    lines = [
        "| file | language | words | starts within ±100 ms | median error | cost | matched | time / audio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in report.files:
        median = "–" if f.median_error_ms is None else f"{f.median_error_ms:.0f} ms"
        lines.append(
            f"| {f.name} | {f.language} | {f.words} | {f.within}/{f.words} ({f.share:.0%}) | {median} | "
            f"{'–' if f.cost is None else f'{f.cost:.2f}'} | {'yes' if f.matched else 'no'} | {f.seconds:.2f} s / {f.audio_seconds:.1f} s |"
        )
    lines.append("")
    lines.append(
        f"Negatives (each transcript on another file's audio): {report.negatives_rejected} of "
        f"{len(report.negatives)} not matched or refused."
    )
    wrongly = [f"{text} on {audio}" for text, audio, outcome in report.negatives if outcome == "matched"]
    if wrongly:
        lines.append("Taken to match although they don't: " + ", ".join(wrongly) + ".")
    if report.synthetic:
        lines += ["", "espeak speech with exact word timings (`SYNTHETIC_SENTENCES` in engine/evaluation/alignment.py, "
                  f"each sentence in {len(SYNTHETIC_RECORDINGS)} voices, speeds and channels unlike the aligner's own "
                  "rendering):", "",
                  "| voice | words | starts within ±100 ms | median error |", "|---|---|---|---|"]
        rows = report.synthetic + [SyntheticFigures(
            "all", sum(r.words for r in report.synthetic), sum(r.within for r in report.synthetic), None)]
        for row in rows:
            median = "–" if row.median_error_ms is None else f"{row.median_error_ms:.0f} ms"
            lines.append(f"| {row.voice} | {row.words} | {row.within}/{row.words} ({row.share:.0%}) | {median} |")
    return lines


def markdown(report: Report, command: str) -> str:
    return (
        "## Transcript alignment (generated)\n\n"
        "Written by `make align-eval`; do not edit by hand: run it again after changing anything the\n"
        f"figures depend on. Target: ≥ {TARGET_SHARE:.0%} of word starts within ±100 ms on every file, "
        "every negative not matched.\n\n"
        f"```\n{command}\n```\n\n" + "\n".join(table(report)) + "\n"
    )


# ----------------------------------------------------------------------------- calibration

# Two sentences per language, spoken by espeak in other voice variants than the aligner's own.
CALIBRATION_SENTENCES = {
    "en-us": ["The quick brown fox jumps over the lazy dog near the river bank.",
              "Please remember to bring your umbrella, because it may rain this afternoon."],
    "de": ["Der Zug nach Berlin fährt heute eine halbe Stunde später ab.",
           "Meine Großmutter backt jeden Sonntag einen Kuchen mit Äpfeln."],
    "es": ["El tren para Madrid sale media hora más tarde que ayer.",
           "Mi abuela prepara una tarta de manzana todos los domingos."],
    "fr": ["Le train pour Paris part avec une demi-heure de retard aujourd'hui.",
           "Ma grand-mère prépare une tarte aux pommes chaque dimanche."],
    "ja": ["東京駅から新幹線に乗って大阪へ行きました。", "毎朝コーヒーを飲みながら新聞を読みます。"],
    "it": ["Il treno per Roma parte con mezz'ora di ritardo oggi.",
           "Mia nonna prepara una torta di mele ogni domenica."],
}
# (variant, speed, telephone band): a fast band-limited female voice and a slow full-band male one
CALIBRATION_RECORDINGS = [("f3", 1.15, True), ("m3", 0.9, False)]


def calibration_recording(text: str, voice: str, variant: str, speed: float, band: bool, seed: int):
    """espeak speech standing in for a recording: silence around it, hiss, optionally 200–3400 Hz."""
    import numpy as np
    from scipy.signal import butter, sosfilt

    from ..speech import resample, synthesize
    from ..speech.alignment import _spaced_transcript

    spoken = synthesize(_spaced_transcript(text, voice), voice=f"{voice}+{variant}", speed=speed)
    rate = spoken.sample_rate
    audio = np.concatenate([np.zeros(int(0.5 * rate), np.float32), spoken.samples, np.zeros(int(0.3 * rate), np.float32)])
    if band:
        audio = sosfilt(butter(4, [200, 3400], btype="band", fs=rate, output="sos"), audio)
    audio = audio + np.random.default_rng(seed).normal(0, 0.004, len(audio))
    return resample(audio.astype(np.float32), rate, 16000)


def calibrate() -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Costs of matching transcripts (positives) and of non-matching ones (another sentence in
    the same language, the same sentence's counterpart in each other language): the numbers
    ``speech.alignment.MISMATCH_COST`` was chosen between. A transcript the search cannot
    align at all, or that is refused as too long, counts as infinitely costly."""
    from ..speech import align_transcript

    positives, negatives = [], []

    def cost(samples, text, voice) -> float:
        try:
            result = align_transcript(samples, 16000, text, voice=voice).cost
        except InputRejected:
            return float("inf")
        return float("inf") if result is None else result

    for language_index, (voice, texts) in enumerate(CALIBRATION_SENTENCES.items()):
        for index, text in enumerate(texts):
            for variant, speed, band in CALIBRATION_RECORDINGS:
                samples = calibration_recording(text, voice, variant, speed, band, seed=10 * language_index + index)
                label = f"{voice}+{variant} #{index + 1}"
                positives.append((cost(samples, text, voice), label))
                negatives.append((cost(samples, texts[1 - index], voice), f"{label}: other {voice} sentence"))
                if variant != CALIBRATION_RECORDINGS[0][0]:
                    continue
                for other_voice, other_texts in CALIBRATION_SENTENCES.items():
                    if other_voice != voice:
                        negatives.append((cost(samples, other_texts[index], other_voice), f"{label}: {other_voice} text"))
    return positives, negatives


def calibration_lines(positives, negatives) -> list[str]:
    import math

    from ..speech.alignment import MISMATCH_COST

    finite = sorted(c for c, _ in negatives if math.isfinite(c))
    return [
        f"Positives ({len(positives)}): cost " + ", ".join(f"{c:.2f}" for c in sorted(c for c, _ in positives)),
        f"Negatives ({len(negatives)}): {len(negatives) - len(finite)} not alignable or refused; aligned ones cost "
        + (", ".join(f"{c:.2f}" for c in finite) or "–"),
        f"Threshold MISMATCH_COST = {MISMATCH_COST}: {sum(c > MISMATCH_COST for c, _ in positives)} positives "
        f"taken as mismatches, {sum(c <= MISMATCH_COST for c, _ in negatives)} negatives taken as matches.",
    ]


# ----------------------------------------------------------------------------- synthetic check

# Other sentences than the calibration's, half of them with a pause (a comma) inside.
SYNTHETIC_SENTENCES = {
    "en-us": ["Yesterday the old fisherman sold six large baskets of fresh sardines at the market.",
              "When the bell rang, the children ran outside, laughing and shouting."],
    "de": ["Gestern hat mein Bruder zwei alte Fahrräder auf dem Markt gekauft.",
           "Als es dunkel wurde, gingen wir langsam nach Hause zurück."],
    "es": ["Los pescadores salieron temprano, pero volvieron sin ningún pez.",
           "Ayer compramos pan, queso y dos botellas de vino en la plaza."],
    "fr": ["Les enfants jouaient dans le jardin pendant que leurs parents préparaient le repas.",
           "Hier soir, nous avons vu un très bon film au cinéma du quartier."],
    "it": ["Ieri sera abbiamo mangiato una pizza buonissima vicino al porto.",
           "Quando piove, i bambini restano a casa e giocano con i loro amici."],
    "pt": ["Os pescadores saíram cedo, mas voltaram sem nenhum peixe.",
           "Ontem compramos pão, queijo e duas garrafas de vinho na praça."],
    "ja": ["昨日は友達と一緒に海へ行って、たくさん泳ぎました。", "この本はとても面白いので、毎晩少しずつ読んでいます。"],
}
# (variant, speed, pitch, channel): a slow low voice in a room with a click before it, a fast
# high one on a telephone band, a plain one
SYNTHETIC_RECORDINGS = [("m1", 0.85, 40, "room"), ("f2", 1.25, 70, "phone"), ("m3", 1.05, 50, "clean")]


def synthetic_recording(text: str, voice: str, variant: str, speed: float, pitch: int, channel: str, seed: int):
    """espeak speech standing in for a recording, and its reference words ({"word", "start"})."""
    import numpy as np
    from scipy.signal import butter, sosfilt

    from ..speech import resample, synthesize
    from ..speech.alignment import _spaced_transcript

    spoken = synthesize(_spaced_transcript(text, voice), voice=f"{voice}+{variant}", speed=speed, pitch=pitch)
    rate, lead = spoken.sample_rate, 0.5
    audio = np.concatenate([np.zeros(int(lead * rate)), spoken.samples, np.zeros(int(0.4 * rate))])
    rng = np.random.default_rng(seed)
    if channel == "phone":
        audio = sosfilt(butter(4, [300, 3400], btype="band", fs=rate, output="sos"), audio)
        audio = audio + rng.normal(0, 0.004, len(audio))
    elif channel == "room":
        tail = np.arange(int(0.3 * rate)) / rate
        response = 0.08 * rng.normal(0, 1, len(tail)) * np.exp(-tail / 0.08)
        response[0] = 1.0
        audio = np.convolve(audio, response)[: len(audio)]
        audio = audio + 0.006 * np.sin(2 * np.pi * 60 * np.arange(len(audio)) / rate) + rng.normal(0, 0.002, len(audio))
        click = int(0.2 * rate)
        audio[click : click + 40] += 0.3 * np.abs(audio).max() * rng.normal(0, 1, 40)
    else:
        audio = audio + rng.normal(0, 0.001, len(audio))
    words = [{"word": w.text, "start": w.start + lead} for w in spoken.words]
    return resample(audio.astype(np.float32), rate, 16000), words


def evaluate_synthetic() -> list[SyntheticFigures]:
    from ..speech import align_transcript

    rows = []
    for language_index, (voice, texts) in enumerate(SYNTHETIC_SENTENCES.items()):
        errors: list[float | None] = []
        for text_index, text in enumerate(texts):
            for recording_index, recording in enumerate(SYNTHETIC_RECORDINGS):
                samples, reference = synthetic_recording(
                    text, voice, *recording, seed=100 * language_index + 10 * text_index + recording_index)
                try:
                    aligned = align_transcript(samples, 16000, text, voice=voice).words
                except InputRejected:
                    aligned = []
                errors += start_errors(reference, aligned)
        found = [abs(e) for e in errors if e is not None]
        rows.append(SyntheticFigures(
            voice=voice, words=len(errors), within=sum(e is not None and abs(e) <= TOLERANCE_S for e in errors),
            median_error_ms=round(statistics.median(found) * 1000, 1) if found else None))
    return rows
