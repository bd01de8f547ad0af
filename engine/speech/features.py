"""Per-frame audio features on a video's frame clock: loudness and mel cepstrum.

- ``frame_loudness(samples, sample_rate, fps) -> np.ndarray``: RMS per output frame.
- ``frame_cepstrum(samples, sample_rate, fps) -> np.ndarray``: mel cepstrum per output frame,
  ``CEPSTRUM_COEFFICIENTS`` columns.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .voice_track import resample


def frame_loudness(samples: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """RMS loudness per output frame (window = one frame period centred on the frame time)."""
    count = max(1, int(math.ceil(len(samples) / sample_rate * fps - 1e-9)))
    hop = sample_rate / fps
    half = int(hop / 2)
    squared = np.concatenate([[0.0], np.cumsum(np.asarray(samples, dtype=np.float64) ** 2)])
    centres = (np.arange(count) * hop).astype(np.int64)
    lo = np.clip(centres - half, 0, len(samples))
    hi = np.clip(centres + half, 0, len(samples))
    width = np.maximum(hi - lo, 1)
    return np.sqrt((squared[hi] - squared[lo]) / width).astype(np.float32)


CEPSTRUM_COEFFICIENTS = 13
_CEPSTRUM_RATE = 16000
_CEPSTRUM_WINDOW = 400  # 25 ms
_CEPSTRUM_HOP = 160  # 10 ms
_CEPSTRUM_FFT = 512
_CEPSTRUM_BANDS = 24


@functools.lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    def mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges_mel = np.linspace(mel(80.0), mel(7600.0), _CEPSTRUM_BANDS + 2)
    edges = np.floor((_CEPSTRUM_FFT + 1) * 700.0 * (10 ** (edges_mel / 2595.0) - 1) / _CEPSTRUM_RATE).astype(int)
    bank = np.zeros((_CEPSTRUM_BANDS, _CEPSTRUM_FFT // 2 + 1), np.float32)
    for band in range(_CEPSTRUM_BANDS):
        low, centre, high = edges[band : band + 3]
        bank[band, low:centre] = np.linspace(0.0, 1.0, centre - low, endpoint=False)
        bank[band, centre:high] = np.linspace(1.0, 0.0, high - centre, endpoint=False)
    return bank


@functools.lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    bands = np.arange(_CEPSTRUM_BANDS)
    k = np.arange(CEPSTRUM_COEFFICIENTS)[:, None]
    matrix = np.cos(np.pi * k * (2 * bands[None, :] + 1) / (2 * _CEPSTRUM_BANDS)) * np.sqrt(2.0 / _CEPSTRUM_BANDS)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


def _raw_cepstrum(samples: np.ndarray, sample_rate: int, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cepstrum, log energy, speech mask) per output frame, before any normalisation."""
    count = max(1, int(math.ceil(len(samples) / sample_rate * fps - 1e-9)))
    audio = resample(samples, sample_rate, _CEPSTRUM_RATE) if sample_rate != _CEPSTRUM_RATE else np.asarray(samples, np.float32)
    bank, window = _mel_filterbank(), np.hanning(_CEPSTRUM_WINDOW).astype(np.float32)
    padded = np.pad(audio, (_CEPSTRUM_WINDOW // 2, _CEPSTRUM_WINDOW // 2))
    starts = np.arange(0, max(len(audio), 1), _CEPSTRUM_HOP)
    pooled = np.zeros((count, _CEPSTRUM_BANDS), np.float64)
    hits = np.zeros(count, np.float64)
    frame_of = np.clip(np.floor(starts / _CEPSTRUM_RATE * fps + 0.5).astype(np.int64), 0, count - 1)
    for first in range(0, len(starts), 4096):  # bounded memory for a 10-minute track
        chunk = starts[first : first + 4096]
        windows = padded[chunk[:, None] + np.arange(_CEPSTRUM_WINDOW)[None, :]] * window
        power = np.abs(np.fft.rfft(windows, _CEPSTRUM_FFT)) ** 2
        np.add.at(pooled, frame_of[first : first + 4096], power @ bank.T)
        hits += np.bincount(frame_of[first : first + 4096], minlength=count)
    pooled /= np.maximum(hits, 1.0)[:, None]
    log_bands = np.log(pooled + 1e-8).astype(np.float32)
    cepstrum = log_bands @ _dct_matrix().T
    energy = np.log(pooled.sum(axis=1) + 1e-8).astype(np.float32)
    loud = float(np.percentile(energy, 90))
    speech = energy > loud - np.log(1000.0)  # within 30 dB of the loud level
    return cepstrum, energy, speech


def frame_cepstrum(samples: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """Mel cepstrum per output frame: (frames, 13), column 0 the log energy.

    The spectrum is pooled over one frame period centred on the frame time (as
    ``frame_loudness``), then normalised per recording: the energy against the recording's
    loud level and the cepstra against their mean over its speech, so a voice track and the
    avatar footage's own sound, recorded at different gains and through different
    microphones, land on the same scale.
    """
    return cepstrum_and_signature(samples, sample_rate, fps)[0]


def cepstrum_and_signature(samples: np.ndarray, sample_rate: int, fps: float) -> tuple[np.ndarray, np.ndarray | None]:
    """``frame_cepstrum`` and the recording's voice signature, from one pass over the audio.

    The signature is the long-term shape of the spectrum: the mean mel cepstrum over speech,
    which is what the per-recording normalisation subtracts — the voice, the microphone and
    the room together. Two stretches of one recording lie close, another speaker or another
    microphone lies far (``voice_distance``). None when the recording has (almost) no speech.
    """
    cepstrum, energy, speech = _raw_cepstrum(samples, sample_rate, fps)
    signature = cepstrum[speech, 1:].mean(axis=0).astype(np.float32) if speech.sum() >= 10 else None
    loud = float(np.percentile(energy, 90))
    if speech.any():
        cepstrum[:, 1:] -= cepstrum[speech, 1:].mean(axis=0)
    cepstrum[:, 0] = np.maximum(energy - loud, -np.log(1e5))  # floor at -50 dB: silence is silence
    return cepstrum.astype(np.float32), signature


def voice_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """RMS difference of two voice signatures in dB of log-spectral shape (None if unknown)."""
    if a is None or b is None or len(a) != len(b):
        return None
    # The orthonormal DCT keeps distances: cepstral RMS over the bands is the log-spectral RMS.
    nepers = float(np.sqrt(np.sum((np.asarray(a) - np.asarray(b)) ** 2) / _CEPSTRUM_BANDS))
    return nepers * 20.0 / math.log(10.0) / 2.0  # power in nepers → amplitude dB
