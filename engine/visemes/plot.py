"""The trajectory as a picture: waveform, phonemes, visemes and the parameter curves."""

from __future__ import annotations

import numpy as np

from ..speech import PAUSE
from .trajectory import Trajectory

_VISEME_COLOURS = {
    "sil": "#dddddd",
    "PP": "#d62728",
    "FF": "#ff7f0e",
    "TH": "#bcbd22",
    "DD": "#8c564b",
    "kk": "#7f7f7f",
    "CH": "#e377c2",
    "SS": "#17becf",
    "nn": "#9467bd",
    "RR": "#aec7e8",
    "aa": "#2ca02c",
    "E": "#98df8a",
    "ih": "#c5b0d5",
    "oh": "#1f77b4",
    "ou": "#393b79",
}


def plot_trajectory(trajectory: Trajectory, samples: np.ndarray, sample_rate: int, path) -> None:
    """PNG with waveform (+ words), phonemes, per-frame visemes and parameter curves on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    duration = max(trajectory.duration, len(samples) / sample_rate)
    width = float(np.clip(duration * 3.0, 10.0, 60.0))
    figure, axes = plt.subplots(
        4, 1, figsize=(width, 8.5), sharex=True, gridspec_kw={"height_ratios": [2.2, 0.8, 0.8, 3.2]}
    )
    wave_axis, phoneme_axis, viseme_axis, curve_axis = axes

    # waveform as a min/max envelope (fast for long audio) with the frame loudness on top
    buckets = int(min(len(samples), width * 200)) or 1
    usable = len(samples) // buckets * buckets
    if usable:
        blocks = np.asarray(samples[:usable]).reshape(buckets, -1)
        x = (np.arange(buckets) + 0.5) * (usable / buckets) / sample_rate
        wave_axis.fill_between(x, blocks.min(axis=1), blocks.max(axis=1), color="#4c72b0", linewidth=0)
    if trajectory.loudness is not None:
        wave_axis.plot(
            trajectory.times, trajectory.loudness, color="#c44e52", linewidth=1.2, label="loudness (RMS)"
        )
        wave_axis.legend(loc="upper left", fontsize=8)
    for word in trajectory.words:
        wave_axis.axvspan(word.start, word.end, color="#f0e442", alpha=0.15, linewidth=0)
        wave_axis.text(
            (word.start + word.end) / 2,
            0.04,
            word.text,
            ha="center",
            va="bottom",
            fontsize=8,
            transform=wave_axis.get_xaxis_transform(),
        )
    wave_axis.set_ylabel("audio")
    wave_axis.set_ylim(-1.0, 1.0)

    for index, phoneme in enumerate(trajectory.phonemes):
        colour = "#eeeeee" if phoneme.phoneme == PAUSE else ("#cfe2f3" if index % 2 else "#fde9c9")
        phoneme_axis.axvspan(phoneme.start, phoneme.end, color=colour, linewidth=0)
        phoneme_axis.text(
            (phoneme.start + phoneme.end) / 2,
            0.5,
            phoneme.phoneme,
            ha="center",
            va="center",
            fontsize=7,
            clip_on=True,
        )
    phoneme_axis.set_yticks([])
    phoneme_axis.set_ylabel("phonemes", rotation=0, ha="right", va="center")

    half = 0.5 / trajectory.fps
    start_index = 0
    for index in range(1, trajectory.frame_count + 1):
        if index == trajectory.frame_count or trajectory.visemes[index] != trajectory.visemes[start_index]:
            label = trajectory.visemes[start_index]
            left, right = start_index / trajectory.fps - half, (index - 1) / trajectory.fps + half
            viseme_axis.axvspan(
                left, right, facecolor=_VISEME_COLOURS.get(label, "#ffffff"), edgecolor="white", linewidth=0.5
            )
            viseme_axis.text(
                (left + right) / 2, 0.5, label, ha="center", va="center", fontsize=7, clip_on=True
            )
            start_index = index
    viseme_axis.set_yticks([])
    viseme_axis.set_ylabel("visemes", rotation=0, ha="right", va="center")

    styles = {
        "jaw": "#2ca02c",
        "width": "#ff7f0e",
        "round": "#1f77b4",
        "closure": "#d62728",
        "tuck": "#9467bd",
        "teeth": "#8c8c8c",
    }
    for name, colour in styles.items():
        curve_axis.plot(
            trajectory.times,
            getattr(trajectory, name),
            color=colour,
            linewidth=1.4,
            label=name,
            marker="." if trajectory.frame_count < 400 else None,
            markersize=3,
        )
    closed = np.flatnonzero(trajectory.closure >= 1.0)
    curve_axis.scatter(
        trajectory.times[closed],
        np.full(closed.shape, 1.04),
        marker="v",
        s=12,
        color="#d62728",
        label="lips closed",
    )
    curve_axis.set_ylim(-0.02, 1.1)
    curve_axis.set_ylabel("mouth parameters")
    curve_axis.legend(loc="upper right", ncol=7, fontsize=8)
    curve_axis.set_xlabel(f"time (s) — frames at {trajectory.fps:g} fps")
    curve_axis.set_xlim(0, duration)
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(str(path), dpi=100, format="png")
    plt.close(figure)
