"""Speech recognition for uploaded speech: energy VAD + PocketSphinx phone recognition.

Public API:

- ``voice_activity(samples, sample_rate) -> list[tuple[float, float]]``: speech regions in
  seconds, from an adaptive energy threshold with hysteresis (no model needed).
- ``recognize(samples16k) -> list[PhonemeEvent]``: ARPAbet phones (``AA`` … ``ZH``) with
  start/end in seconds, only inside speech regions; silence and noise phones are dropped,
  so every gap in the list is a pause.

Recognition uses PocketSphinx 5's bundled en-US acoustic model and phone language model in
all-phone mode, with the settings that work for lip sync (as Rhubarb Lip Sync found):
context-independent phones, language weight 0.8 (lower flutters, higher freezes), beams of
1e-20, batch cepstral mean normalisation with a fresh front end per utterance, fixed-seed
dither, and each VAD region decoded as its own utterance padded by 30 ms. Where the
recogniser says "silence" but the audio is plainly sounding, the gap is given to the phones
around it (or to a neutral vowel), so the mouth never shuts in the middle of a word. The
output is deterministic: the same audio gives the same phones.

The model is English; other languages still come out as English phones at the right times,
which is what mouth motion needs most (docs/speech.md has the measurements).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..errors import Cancelled
from .synthesis import PhonemeEvent

SAMPLE_RATE = 16000
PAD_SECONDS = 0.030

# VAD: 10 ms hop, 25 ms window; thresholds in dB relative to the recording's own levels.
_HOP_S = 0.010
_WINDOW_S = 0.025
_FLOOR_PERCENTILE = 10
_PEAK_PERCENTILE = 97
_ABOVE_FLOOR_DB = 12.0  # speech starts this far above the noise floor …
_BELOW_PEAK_DB = 38.0  # … but never more than this far below the loud parts
_ABSOLUTE_MIN_DB = -58.0  # and never below this level (dither, hiss)
_HYSTERESIS_DB = 6.0  # once started, speech continues until this much below the start level
_MIN_SPEECH_S = 0.06
_MERGE_GAP_S = 0.20  # shorter gaps are breaths between words, not pauses
_EDGE_PAD_S = 0.02  # soft onsets/offsets sit under the threshold
_SPLIT_GAP_S = 0.06  # voiced "silences" shorter than this go to the phones around them

# Phones PocketSphinx uses for silence and noise.
_NON_SPEECH = {"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+", "+UH+", "+UM+", "+SMACK+"}
# When a region yields no phone at all (mumble, a language far from English), the mouth
# still has to move: an open-mid vowel, shaped over time by the loudness envelope.
FALLBACK_PHONE = "AH"


def _frame_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    hop = int(round(_HOP_S * sample_rate))
    window = int(round(_WINDOW_S * sample_rate))
    count = max(0, (len(samples) - window) // hop + 1)
    if count == 0:
        return np.zeros(0)
    squared = np.concatenate([[0.0], np.cumsum(np.asarray(samples, dtype=np.float64) ** 2)])
    starts = np.arange(count) * hop
    energy = (squared[starts + window] - squared[starts]) / window
    return 10.0 * np.log10(np.maximum(energy, 1e-12))


def _threshold(levels: np.ndarray) -> float:
    floor = float(np.percentile(levels, _FLOOR_PERCENTILE))
    peak = float(np.percentile(levels, _PEAK_PERCENTILE))
    return max(floor + _ABOVE_FLOOR_DB, peak - _BELOW_PEAK_DB, _ABSOLUTE_MIN_DB)


@dataclass(frozen=True)
class _Levels:
    """Frame levels (dB, one per 10 ms hop) and the thresholds the VAD derived from them."""

    db: np.ndarray
    start_level: float
    stay_level: float

    def mean_db(self, start: float, end: float) -> float:
        first, last = int(start / _HOP_S), max(int(start / _HOP_S) + 1, int(end / _HOP_S))
        window = self.db[first:last]
        return float(10 * np.log10(np.mean(10 ** (window / 10)))) if window.size else -120.0


def _levels(samples: np.ndarray, sample_rate: int) -> _Levels | None:
    db = _frame_db(samples, sample_rate)
    if len(db) == 0:
        return None
    start_level = _threshold(db)
    return _Levels(db, start_level, start_level - _HYSTERESIS_DB)


def _regions(levels: _Levels, duration: float) -> list[tuple[float, float]]:
    regions: list[tuple[float, float]] = []
    active_from: int | None = None
    for index, level in enumerate(levels.db):
        if active_from is None and level >= levels.start_level:
            active_from = index
        elif active_from is not None and level < levels.stay_level:
            regions.append((active_from * _HOP_S, index * _HOP_S + _WINDOW_S))
            active_from = None
    if active_from is not None:
        regions.append((active_from * _HOP_S, len(levels.db) * _HOP_S + _WINDOW_S))

    merged: list[tuple[float, float]] = []
    for start, end in regions:
        if merged and start - merged[-1][1] < _MERGE_GAP_S:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [
        (max(0.0, start - _EDGE_PAD_S), min(duration, end + _EDGE_PAD_S))
        for start, end in merged
        if end - start >= _MIN_SPEECH_S
    ]


def voice_activity(samples: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
    """Speech regions (start, end) in seconds, merged across short gaps and lightly padded."""
    levels = _levels(samples, sample_rate)
    return [] if levels is None else _regions(levels, len(samples) / sample_rate)


# ----------------------------------------------------------------------------- recognition

# One decoder per process: loading the model takes ~0.3 s, decoding is not re-entrant.
_DECODER_LOCK = threading.Lock()


def english_decoder(**search):
    """A PocketSphinx decoder on the bundled en-US acoustic model, 16 kHz, batch cepstral mean
    normalisation, no dither of its own (callers dither per utterance, so results repeat);
    ``search`` names the model files relative to the bundled ``en-us`` folder (``lm``,
    ``dict``, ``allphone``) and the search settings."""
    from pocketsphinx import Config, Decoder, get_model_path

    folder = os.path.join(get_model_path(), "en-us")
    files = {name: search.pop(name) for name in ("lm", "dict", "allphone") if name in search}
    # os.path.join keeps an absolute path as it is: the captions' own dictionary lives here
    files = {name: os.path.join(folder, file) if file else None for name, file in files.items()}
    config = Config(hmm=os.path.join(folder, "en-us"), cmn="batch", dither=False, samprate=SAMPLE_RATE,
                    loglevel="FATAL", **files, **search)
    return Decoder(config)


# ----------------------------------------------------------------------------- captions

# Machine captions search only the language model's most frequent words. The full CMU
# dictionary's 126,000 words (72,500 of them in the model) give rare sound-alikes a place in
# every search ("wall of turmoil" for "Obama family"); the 20,000 commonest cover everyday
# speech, load in half the time, and let a much narrower search hear as many words (on three
# recordings and four espeak voices, 52 % word error rather than 60 % with the full
# dictionary at the same search). Rebuild with ``write_caption_dictionary()`` when the bundled
# model changes; a test checks that the shipped file matches.
CAPTION_WORDS = 20000
CAPTION_DICTIONARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "captions-en-us.dict")


def caption_dictionary_lines(words: int = CAPTION_WORDS) -> list[str]:
    """The bundled CMU dictionary's entries (every pronunciation) for the ``words`` words the
    bundled language model finds likeliest on their own; ties in alphabetical order."""
    from pocketsphinx import NGramModel, get_model_path

    folder = os.path.join(get_model_path(), "en-us")
    model = NGramModel.readfile(os.path.join(folder, "en-us.lm.bin"))
    with open(os.path.join(folder, "cmudict-en-us.dict"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    spellings = {line.split(" ", 1)[0] for line in lines if "(" not in line.split(" ", 1)[0]}
    # a word outside the model scores the log of zero (the most negative int32 / 4)
    scored = [(-model.prob([word]), word) for word in spellings]
    known = sorted((score, word) for score, word in scored if score < 2**29)
    keep = {word for _, word in known[:words]}
    return [line for line in lines if line.split(" ", 1)[0].split("(", 1)[0] in keep]


def write_caption_dictionary(path: str = CAPTION_DICTIONARY, words: int = CAPTION_WORDS) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(caption_dictionary_lines(words)) + "\n")


@functools.lru_cache(maxsize=1)
def _decoder():
    return english_decoder(allphone="en-us-phone.lm.bin", lm=None, dict=None, allphone_ci=True, lw=0.8,
                           beam=1e-20, pbeam=1e-20)


def _decode_utterance(pcm16: np.ndarray) -> list[tuple[str, float, float]]:
    """(phone, start, end) in seconds from the start of ``pcm16``."""
    decoder = _decoder()
    # The feature front end keeps its cepstral mean from the previous utterance even in
    # batch mode; a fresh one per utterance makes results independent of what came before.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm16.tobytes(), full_utt=True)
    decoder.end_utt()
    frame = 1.0 / decoder.config["frate"]
    return [(seg.word, seg.start_frame * frame, (seg.end_frame + 1) * frame) for seg in decoder.seg()]


def _fill_voiced_gaps(
    found: list[PhonemeEvent], region: tuple[float, float], levels: _Levels
) -> list[PhonemeEvent]:
    """Close the gaps the recogniser called silence where the audio is plainly sounding.

    A mouth that shuts in the middle of a voiced word looks broken. Short gaps are split
    between the phones on either side; longer ones become the fallback vowel, which the
    loudness envelope then shapes. Quiet gaps stay gaps: they are real pauses.
    """
    filled: list[PhonemeEvent] = []
    cursor = region[0]
    for event in found + [PhonemeEvent(region[1], region[1], "")]:
        gap = event.start - cursor
        if gap > 1e-6 and levels.mean_db(cursor, event.start) >= levels.stay_level:
            if gap < _SPLIT_GAP_S and filled and event.phoneme:
                middle = (cursor + event.start) / 2
                filled[-1] = PhonemeEvent(filled[-1].start, middle, filled[-1].phoneme)
                event = PhonemeEvent(middle, event.end, event.phoneme)
            elif gap < _SPLIT_GAP_S and filled:
                filled[-1] = PhonemeEvent(filled[-1].start, event.start, filled[-1].phoneme)
            elif gap < _SPLIT_GAP_S and event.phoneme:
                event = PhonemeEvent(cursor, event.end, event.phoneme)
            else:
                filled.append(PhonemeEvent(cursor, event.start, FALLBACK_PHONE))
        if event.phoneme:
            filled.append(event)
        cursor = max(cursor, event.end)
    return filled


# A voice track's speech regions are independent utterances (fresh front end each), so
# they can be decoded in another process and give exactly the same phones. Below this much
# speech a child process (~0.4 s to start and load the model) is not worth it.
_CHILD_MIN_SPEECH_S = 4.0
_CHILD_GRACE_S = 30.0
# Not ``-m engine.speech.recognition``: the package imports this module before runpy would
# run it a second time as ``__main__``.
_CHILD_COMMAND = "import sys; from engine.speech.recognition import child_main; sys.exit(child_main())"


def _seconds(slices: list[tuple[int, int]]) -> float:
    return sum(last - first for first, last in slices) / SAMPLE_RATE


def _decode_slices(
    pcm: np.ndarray, slices: list[tuple[int, int]], stop: threading.Event | None = None
) -> list[list[tuple[str, float, float]]]:
    results = []
    for first, last in slices:
        if stop is not None and stop.is_set():
            raise Cancelled("Speech recognition was stopped.")
        with _DECODER_LOCK:
            results.append(_decode_utterance(pcm[first:last]))
    return results


class _ChildDecoder:
    """Decodes utterances in a child Python process (PocketSphinx holds the GIL while it
    decodes, so a thread would not run beside anything). A plain subprocess, not
    multiprocessing: it works inside a daemonic Celery worker too."""

    def __init__(self, pcm: np.ndarray, slices: list[tuple[int, int]]):
        import json
        import subprocess
        import sys
        from pathlib import Path

        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
        self._child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, cwd=root,
        )
        # decoding runs at ~0.05 × real time; a child still busy long after that is stuck
        self._deadline = time.monotonic() + _CHILD_GRACE_S + 5.0 * _seconds(slices)
        header = json.dumps([last - first for first, last in slices]).encode() + b"\n"
        payload = header + b"".join(pcm[first:last].tobytes() for first, last in slices)
        self._count = len(slices)
        # fed from a thread: the pipe holds 64 KB and the child must start decoding now
        self._feeder = threading.Thread(target=self._feed, args=(payload,), name="phones-feed", daemon=True)
        self._feeder.start()

    def _feed(self, payload: bytes) -> None:
        try:
            self._child.stdin.write(payload)
            self._child.stdin.close()
        except OSError:  # the child died; result() notices
            pass

    def result(self, stop: threading.Event | None = None) -> list[list[tuple[str, float, float]]] | None:
        """The phones per utterance, or None if the child failed or overran its deadline
        (the caller then decodes here). Setting ``stop`` kills the child and raises
        ``Cancelled``."""
        import json
        import select

        try:
            chunks = []
            stream = self._child.stdout
            while True:
                if stop is not None and stop.is_set():
                    raise Cancelled("Speech recognition was stopped.")
                if time.monotonic() > self._deadline:  # a wedged child: decode here instead
                    self.kill()
                    return None
                ready, _, _ = select.select([stream], [], [], 0.1)
                if ready:
                    chunk = os.read(stream.fileno(), 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
            stream.close()
            self._feeder.join()
            if self._child.wait(timeout=60) != 0:
                return None
            results = [[(str(p), float(a), float(b)) for p, a, b in utterance]
                       for utterance in json.loads(b"".join(chunks))]
            return results if len(results) == self._count else None
        except Cancelled:
            self.kill()
            raise
        except Exception:
            self.kill()
            return None

    def kill(self) -> None:
        self._child.kill()
        self._child.wait()
        self._feeder.join()


def child_main() -> int:
    """The child side of ``_ChildDecoder``: utterance lengths (a JSON line), then their
    16-bit PCM on stdin; the phones per utterance as JSON on stdout."""
    import json
    import sys

    lengths = json.loads(sys.stdin.buffer.readline())
    pcm = np.frombuffer(sys.stdin.buffer.read(), dtype=np.int16)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    results = _decode_slices(pcm, list(zip(bounds[:-1], bounds[1:])))
    sys.stdout.write(json.dumps(results))
    return 0


def _split_point(slices: list[tuple[int, int]], local_share: float) -> int:
    """How many leading utterances to decode here, so this process gets ~``local_share``
    of the speech."""
    sizes = np.array([last - first for first, last in slices], np.float64)
    if local_share <= 0.0:
        return 0
    cumulative = np.cumsum(sizes) / sizes.sum()
    return int(np.searchsorted(cumulative, local_share) + 1) if local_share < 1.0 else len(slices)


def recognize(
    samples16k: np.ndarray, *, local_share: float = 0.6, stop: threading.Event | None = None
) -> list[PhonemeEvent]:
    """ARPAbet phones with times in seconds, inside the speech regions of 16 kHz mono audio.

    Beyond a few seconds of speech, the later utterances are decoded in a child process
    while this one decodes the first ``local_share`` of the speech (0: all of it in the
    child, for a caller whose own cores are busy; 1: none). The default leaves the child
    less, for its ~0.4 s start. ``stop``, when set, ends the work early with ``Cancelled``
    (checked between utterances here, at once for the child)."""
    samples = np.asarray(samples16k, dtype=np.float32)
    levels = _levels(samples, SAMPLE_RATE)
    if levels is None:
        return []
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    # ±1 LSB of noise keeps digital silence out of log(0) in the features (PocketSphinx's own
    # dither does this too, but its random state runs on across utterances).
    pcm = np.clip(
        pcm.astype(np.int32) + np.random.default_rng(0).integers(-1, 2, size=pcm.shape), -32768, 32767
    ).astype(np.int16)
    pad = int(PAD_SECONDS * SAMPLE_RATE)
    regions = _regions(levels, len(samples) / SAMPLE_RATE)
    slices = [(max(0, int(start * SAMPLE_RATE) - pad), min(len(pcm), int(end * SAMPLE_RATE) + pad))
              for start, end in regions]
    here = len(slices) if _seconds(slices) < _CHILD_MIN_SPEECH_S else _split_point(slices, local_share)
    child = _ChildDecoder(pcm, slices[here:]) if here < len(slices) else None
    try:
        decoded = _decode_slices(pcm, slices[:here], stop)
    except BaseException:
        if child is not None:
            child.kill()
        raise
    if child is not None:
        decoded += child.result(stop) or _decode_slices(pcm, slices[here:], stop)
    events: list[PhonemeEvent] = []
    for region, (first, _last), phones in zip(regions, slices, decoded):
        region_start, region_end = region
        offset = first / SAMPLE_RATE
        found = []
        for phone, start, end in phones:
            if phone in _NON_SPEECH or phone.startswith("+"):
                continue
            # the padding belongs to the silence around the region, not to the speech
            start, end = max(region_start, start + offset), min(region_end, end + offset)
            if end - start > 1e-6:
                found.append(PhonemeEvent(start, end, phone))
        events.extend(_fill_voiced_gaps(found, region, levels))
    return events
