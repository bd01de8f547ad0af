"""engine.photo.life: blinks and head motion planned from the speech."""

from __future__ import annotations

import numpy as np

from engine.photo import blink_closure, blink_schedule, plan_life
from engine.photo.life import NOD_MAX_DEG, pauses


def phrases(seconds: float, rate: int = 16000, seed: int = 1) -> np.ndarray:
    """Speech-like noise: syllables at ~4 Hz in phrases of 2–4 s, with 0.4–0.9 s pauses."""
    rng = np.random.default_rng(seed)
    envelope = np.zeros(int(seconds * rate), np.float32)
    t = 0.3
    while t < seconds:
        length = rng.uniform(2.0, 4.0)
        k = np.arange(int(t * rate), min(int((t + length) * rate), len(envelope)))
        envelope[k] = 0.2 + 0.8 * np.sin(np.pi * 4.0 * (k / rate - t)) ** 2
        t += length + rng.uniform(0.4, 0.9)
    return (rng.standard_normal(len(envelope)) * envelope).astype(np.float32)


def test_blinks_come_15_to_26_a_minute_and_last_150_to_250_ms():
    samples = phrases(60.0)
    life = plan_life(samples, 16000, 25.0, 1500, seed=7)
    assert 15 <= len(life.blinks) <= 26
    assert all(0.15 <= duration <= 0.25 for _, duration in life.blinks)
    starts = [start for start, _ in life.blinks]
    assert min(np.diff(starts)) >= 1.5
    # The eyes shut fully in each blink, and are open between.
    assert life.eyes.max() == 1.0 and (life.eyes == 0).mean() > 0.8


def test_blinks_prefer_the_pauses():
    samples = phrases(60.0)
    life = plan_life(samples, 16000, 25.0, 1500, seed=7)
    from engine.photo.life import loudness_db

    quiet = pauses(loudness_db(samples, 16000, 25.0, 1500), 25.0)
    in_pause = [any(a <= start and start + duration <= b for a, b in quiet) for start, duration in life.blinks]
    quiet_share = sum(b - a for a, b in quiet) / 60.0
    assert np.mean(in_pause) > max(0.5, 2 * quiet_share)


def test_the_schedule_is_seeded():
    assert blink_schedule(30.0, [], seed=3) == blink_schedule(30.0, [], seed=3)
    assert blink_schedule(30.0, [], seed=3) != blink_schedule(30.0, [], seed=4)


def test_a_blink_closes_fast_and_opens_slower():
    t = np.linspace(0.0, 0.2, 201)
    closure = blink_closure(t, [(0.0, 0.2)])
    assert closure[0] == 0.0 and closure[-1] < 1e-6
    assert np.argmax(closure) < 100
    assert closure.max() == 1.0


def test_nods_follow_stressed_syllables_and_stay_small():
    samples = phrases(20.0)
    life = plan_life(samples, 16000, 25.0, 500, seed=2)
    assert life.pitch.max() <= NOD_MAX_DEG + 1e-9 and life.pitch.max() > 1.0
    assert np.abs(life.yaw).max() <= 1.0 and np.abs(life.roll).max() <= 1.0
    # Quiet input: only the slow drift, no nods.
    still = plan_life(np.zeros(16000 * 5, np.float32), 16000, 25.0, 125, seed=2)
    assert still.pitch.max() <= 1.0
