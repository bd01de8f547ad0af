"""engine.evaluation.metrics: the metric functions on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import evaluation as ev
from engine import face
from engine.speech import PhonemeEvent


def test_pearson_of_identical_affine_and_opposite_series():
    x = np.sin(np.linspace(0, 7, 200))
    assert ev.pearson(x, x) == pytest.approx(1.0)
    assert ev.pearson(x, 3 * x + 2) == pytest.approx(1.0)
    assert ev.pearson(x, -x) == pytest.approx(-1.0)


def test_pearson_ignores_gaps_and_is_undefined_for_a_constant():
    x = np.arange(50, dtype=float)
    y = x.copy()
    y[[3, 17]] = np.nan
    assert ev.pearson(x, y) == pytest.approx(1.0)
    assert math.isnan(ev.pearson(x, np.ones(50)))
    assert math.isnan(ev.pearson([1.0, 2.0], [1.0, 2.0]))


@pytest.mark.parametrize("shift", [-4, -1, 0, 2, 5])
def test_best_lag_finds_the_shift(shift):
    rng = np.random.default_rng(3)
    reference = np.convolve(rng.normal(size=300), np.ones(3) / 3, mode="same")
    signal = np.roll(reference, shift)  # signal[t] = reference[t - shift]: later by `shift`
    lag, r = ev.best_lag(signal, reference, max_lag=5)
    assert lag == shift
    assert r > 0.95


def test_best_lag_of_a_constant_is_undefined():
    assert ev.best_lag(np.ones(40), np.arange(40.0)) == (None, pytest.approx(math.nan, nan_ok=True))


def test_psnr_identical_is_capped_and_known_error_gives_known_db():
    a = np.full((20, 30, 3), 100, np.uint8)
    assert ev.psnr(a, a) == ev.PSNR_CAP_DB
    b = a.copy()
    b[...] = 110  # MSE 100 → 10·log10(255² / 100) = 28.13 dB
    assert ev.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-6)


def test_psnr_outside_a_mask_ignores_the_pixels_inside():
    a = np.zeros((40, 40, 3), np.uint8)
    b = a.copy()
    b[15:25, 15:25] = 255
    mask = np.zeros((40, 40), np.float32)
    mask[18:22, 18:22] = 1.0
    keep = ~ev.dilated_mask(mask, 4)
    assert ev.psnr(a, b, keep) == ev.PSNR_CAP_DB  # the dilated mask covers the changed block
    assert ev.psnr(a, b, ~ev.dilated_mask(mask, 1)) < 20
    assert not ev.dilated_mask(None, 10, shape=(5, 6, 3)).any()


def test_similarity_transform_recovers_rotation_scale_translation():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(15, 2)) * 30
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = src @ (scale * rotation).T + shift
    # in float64, as the evaluation's canonical frame uses it
    m = face.similarity_transform(src, dst, dtype=np.float64)
    assert np.allclose(m[:, :2], scale * rotation, atol=1e-9)
    assert np.allclose(m[:, 2], shift, atol=1e-9)
    assert np.allclose(face.apply_transform(m, src, dtype=np.float64), dst, atol=1e-9)


def test_second_difference_jitter_is_zero_for_uniform_motion_and_skips_gaps():
    steady = np.stack([np.full((4, 2), float(k)) for k in range(10)])
    assert ev.second_difference_jitter(steady) == pytest.approx(0.0)
    shaky = steady.copy()
    shaky[5] += 0.5  # one frame off by (0.5, 0.5): three triples see it
    value = ev.second_difference_jitter(shaky)
    assert value > 0
    shaky[2] = np.nan
    assert math.isfinite(ev.second_difference_jitter(shaky))


def test_closed_threshold_and_pbm_checks():
    apertures = np.r_[np.full(20, 0.005), np.full(80, 0.15), [0.3, 0.3]]
    threshold, closed, opened = ev.closed_threshold(apertures)
    assert closed == pytest.approx(0.005)
    assert 0.025 <= threshold < 0.1
    fps = 25.0
    series = np.full(50, 0.15)
    series[10] = 0.0  # closed at 0.40 s
    events = [
        PhonemeEvent(0.42, 0.48, "M"),  # closed frame 20 ms before: counts
        PhonemeEvent(1.20, 1.30, "B"),  # nothing closed near it
        PhonemeEvent(0.40, 0.50, "AA"),  # not a bilabial
    ]
    checks = ev.closure_checks(events, series, fps, threshold)
    assert [c.phone for c in checks] == ["M", "B"]
    assert [c.closed for c in checks] == [True, False]
    assert ev.closed_share(checks) == 0.5
    assert ev.closure_runs(np.array([0.0, 0.0, 0.2, 0.0, 0.2, np.nan, 0.0]), 0.05) == 3
    assert ev.closure_runs(np.array([]), 0.05) == 0


def test_selection_oracles_find_a_library_frame_that_is_the_held_out_one():
    from skimage import data

    from engine.face import LIP_INNER, face_mesh

    face = face_mesh(data.astronaut(), static=True)[0][:, :2].astype(np.float64)
    lower = np.concatenate([LIP_INNER[11:], [14, 17, 84, 181, 91, 146, 314, 405, 321, 375]])

    def opened(drop: float, turn: float) -> np.ndarray:
        frame = face.copy()
        frame[lower, 1] += drop  # the lower lip (and the mouth) opens
        frame[:, 0] += turn * (frame[:, 1] - frame[:, 1].mean()) * 0.01  # a little shear: pose
        return frame

    library = [opened(2.0 * k, k % 3) for k in range(10)]
    real_all = library + [library[3], library[7], library[1], library[5]]
    canonical = ev.Canonical(library[0])
    oracles = ev.selection_oracles(real_all, 10, canonical, ev.lip_indices(), static_mean=1.0)
    assert oracles["best_frame"]["lip_distance_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert oracles["state_and_pose"]["lip_distance_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert oracles["state_and_pose"]["aperture_r"] == pytest.approx(1.0)
    assert ev.selection_oracles(real_all[:10], 10, canonical, ev.lip_indices(), static_mean=1.0) == {}


def test_sharpness_ratio_is_1_for_the_footage_itself_and_drops_when_the_lower_face_is_blurred():
    import cv2
    from skimage import data

    from engine.evaluation.metrics import face_halves, face_sharpness, sharpness_ratio

    rgb = np.ascontiguousarray(data.astronaut())
    with face.FaceTracker() as tracker:
        landmarks = tracker.track(rgb)
    assert landmarks is not None
    lower, upper = face_halves(landmarks, rgb.shape)
    assert lower.sum() > 1000 and upper.sum() > 1000
    assert (lower & upper).sum() < 0.05 * lower.sum()  # they meet under the nose
    own = face_sharpness(rgb, landmarks)
    assert 0.05 < own < 20

    def lower_face(image):
        out = rgb.copy()
        out[lower] = image[lower]
        return out

    blurred_all = cv2.GaussianBlur(rgb, (0, 0), 1.2)
    soft = face_sharpness(lower_face(blurred_all), landmarks)
    assert sharpness_ratio([own, own], [own, own]) == pytest.approx(1.0)
    assert sharpness_ratio([soft], [own]) < 0.6
    # the lower face as soft as a frame blurred all over is as sharp as the rest of that frame
    assert sharpness_ratio([face_sharpness(blurred_all, landmarks)], [own]) > 0.6
    assert math.isnan(face_sharpness(rgb, None)) and math.isnan(sharpness_ratio([math.nan], [own]))
