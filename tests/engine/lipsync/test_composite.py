"""The corrections the compositor traces each pasted pixel through (``composite.GridShift``)."""

from __future__ import annotations

import numpy as np

from engine.lipsync.composite import JAW_FIT_SIGMA, jaw_fit_field
from engine.lipsync.library import K_JAW, K_OUTER, K_UNDER_NOSE, KEPT

IOD = 128.0
SIZE = (244, 204)


def _face(jaw_drop: float = 0.0, jaw_shift: float = 0.0) -> np.ndarray:
    """Canonical points of a simple face: a U-shaped jaw, an oval mouth, a line under the nose."""
    points = np.zeros((len(KEPT), 2), np.float32)
    t = np.linspace(0.0, np.pi, len(K_JAW))
    points[K_JAW] = np.stack([122 + 80 * np.cos(t) + jaw_shift, 60 + (110 + jaw_drop) * np.sin(t)], axis=1)
    t = np.linspace(0.0, 2 * np.pi, len(K_OUTER), endpoint=False)
    points[K_OUTER] = np.stack([122 + 30 * np.cos(t), 110 + 12 * np.sin(t)], axis=1)
    points[K_UNDER_NOSE] = np.stack([np.linspace(100, 144, len(K_UNDER_NOSE)), np.full(len(K_UNDER_NOSE), 80.0)], axis=1)
    return points


def test_the_jaw_fit_is_the_gaussian_interpolation_it_describes_at_every_pixel():
    source, background = _face(), _face(jaw_drop=9.0, jaw_shift=4.0)
    fit = jaw_fit_field(source, background, np.zeros(2, np.float32), SIZE, IOD)
    assert fit is not None
    ys, xs = np.mgrid[0 : SIZE[1], 0 : SIZE[0]].astype(np.float32)
    from_x, from_y = fit.source(xs, ys)

    jaw_to = background[K_JAW]
    still = np.concatenate([source[K_OUTER], source[K_UNDER_NOSE]])
    anchors = np.concatenate([jaw_to, still]).astype(np.float64)
    values = np.concatenate([jaw_to - source[K_JAW], np.zeros_like(still)]).astype(np.float64)
    d2 = (xs[..., None] - anchors[:, 0]) ** 2 + (ys[..., None] - anchors[:, 1]) ** 2
    weights = np.exp(-d2 / (2 * (JAW_FIT_SIGMA * IOD) ** 2))
    shift = (weights[..., None] * values).sum(axis=2) / (weights.sum(axis=2)[..., None] + 0.05)

    # inside the field's box (the jaw and lips with a margin): the interpolation itself,
    # to a fraction of a pixel; moving the jaw by several pixels
    origin_x, origin_y = fit.origin
    rows, columns = fit.shift.shape[:2]
    box = ((xs >= origin_x) & (xs <= origin_x + (columns - 1) * fit.step[0])
           & (ys >= origin_y) & (ys <= origin_y + (rows - 1) * fit.step[1]))
    assert np.abs(shift[box]).max() > 5.0
    assert np.abs((xs - shift[..., 0]) - from_x)[box].max() < 0.5
    assert np.abs((ys - shift[..., 1]) - from_y)[box].max() < 0.5
    # the lips stay where they are
    lips = np.round(source[K_OUTER]).astype(int)
    assert np.abs(from_y[lips[:, 1], lips[:, 0]] - lips[:, 1]).max() < 1.0


def test_jaws_that_agree_need_no_fit():
    face = _face()
    assert jaw_fit_field(face, face + np.float32(0.3), np.zeros(2, np.float32), SIZE, IOD) is None


def _mouth_face(gap: float) -> np.ndarray:
    """``_face`` with an inner lip contour open by ``gap`` pixels and a chin."""
    from engine.lipsync.library import K_CHIN, K_INNER, K_SUBNASALE

    points = _face()
    t = np.linspace(0.0, 2 * np.pi, len(K_INNER), endpoint=False)
    points[K_INNER] = np.stack([122 + 24 * np.cos(t), 110 + gap / 2 * np.sin(t)], axis=1)
    points[K_CHIN] = (122.0, 170.0)
    points[K_SUBNASALE] = (122.0, 82.0)
    return points


def _piecewise_map(src: np.ndarray, dst: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Column by column, y on the moved knots → y on the knots; identity outside them."""
    out = np.repeat(ys, src.shape[1], axis=1).astype(np.float64)
    for k in range(len(src) - 1):
        t0, t1, s0, s1 = dst[k][None], dst[k + 1][None], src[k][None], src[k + 1][None]
        segment = (ys >= t0) & (ys < t1)
        np.copyto(out, s0 + (ys - t0) * (s1 - s0) / np.maximum(t1 - t0, 1e-3), where=segment)
    return out


def test_the_lip_correction_maps_every_column_through_its_own_knots():
    from engine.lipsync.composite import _column_maps

    rng = np.random.default_rng(3)
    src = np.sort(rng.uniform(20, 180, (7, 40)), axis=0)
    dst = np.maximum.accumulate(src + rng.uniform(-12, 12, src.shape), axis=0)
    dst[2:4, :5] = dst[2, :5]  # a closed mouth: two knots on one another
    ys = np.arange(0, 204, 2, dtype=np.float32)[:, None] + 0.5
    assert np.abs(_column_maps(src, dst, ys) - _piecewise_map(src, dst, ys)).max() < 1e-3


def test_the_lip_correction_closes_and_opens_the_mouth():
    from engine.lipsync.composite import lip_correction_field

    for gap, change in ((14.0, -1e6), (14.0, -5.0), (10.0, 6.0)):
        field = lip_correction_field(_mouth_face(gap), np.zeros(2, np.float32), SIZE, IOD, change)
        assert field is not None and np.all(field.shift[..., 0] == 0.0)
        # nothing moves at the top, under the nose
        assert np.abs(field.shift[0, :, 1]).max() < 1e-3
        # the rows between the lips at the mouth's centre come from elsewhere
        assert np.abs(field.shift[..., 1]).max() > 1.0


def test_the_frame_pool_reuses_only_frames_nobody_else_holds():
    import av

    from engine.face import yuv_planes
    from engine.lipsync.composite import _FramePool

    source = av.VideoFrame(64, 48, "yuv420p")
    for plane in yuv_planes(source):
        plane[:] = 7
    pool = _FramePool()
    first = pool.copy(source)
    second = pool.copy(source)
    assert first is not second  # the first is still held
    held = yuv_planes(second)[0]  # a view keeps its frame too
    del first
    third = pool.copy(source)
    assert third is not second and len(pool.frames) == 2  # the released one came back
    assert np.all(yuv_planes(third)[0] == 7) and held.base is not None
    other = pool.copy(av.VideoFrame(32, 16, "yuv420p"))
    assert other.width == 32 and len(pool.frames) == 3


def _finest(luma: np.ndarray) -> np.ndarray:
    import cv2

    f = luma.astype(np.float32)
    return f - cv2.GaussianBlur(f, (0, 0), 0.8)


def test_the_pasted_mouth_gets_back_the_finest_detail_of_the_face_round_it():
    # A softer crop (two resamplings and an encoder behind it) pasted over sharp skin: the
    # finest octave, what a Laplacian and the eye read as sharpness, must come back to the
    # skin's, not only the coarser fine detail.
    import types

    import cv2

    from engine.lipsync.composite import MouthCompositor
    from engine.lipsync.library import K_INNER

    rng = np.random.default_rng(5)
    size = 160
    under = np.clip(128 + cv2.GaussianBlur(rng.normal(0, 14, (size, size)).astype(np.float32), (0, 0), 0.7),
                    0, 255).astype(np.uint8)
    other = np.clip(128 + cv2.GaussianBlur(rng.normal(0, 14, (size, size)).astype(np.float32), (0, 0), 0.7), 0, 255)
    pasted = np.clip(cv2.GaussianBlur(other.astype(np.float32), (0, 0), 0.6), 0, 255).astype(np.uint8)
    alpha = np.zeros((size, size), np.float32)
    cv2.circle(alpha, (size // 2, size // 2), 50, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 8.0)  # a feather as wide as the compositor's
    alpha[alpha < 0.01] = 0.0
    points = np.zeros((1, max(K_INNER) + 1, 2), np.float32)
    points[0, K_INNER] = (size // 2, size // 2)  # a mouth opening of no area
    compositor = object.__new__(MouthCompositor)
    compositor.cv2, compositor.detail, compositor.origin = cv2, None, np.zeros(2)
    compositor.lib = types.SimpleNamespace(points=points)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)

    out = compositor._blend_luma(pasted, under, alpha, identity, 0, 0)

    inside = np.zeros((size, size), bool)
    inside[size // 2 - 25:size // 2 + 25, size // 2 - 25:size // 2 + 25] = True
    skin = _finest(under)[inside].std()
    assert _finest(pasted)[inside].std() < 0.6 * skin  # the crop really is softer
    assert 0.85 <= _finest(out)[inside].std() / skin <= 1.2
    # where one face's detail hands over to the other's, neither is averaged away
    handover = (alpha > 0.4) & (alpha < 0.6)
    assert handover.sum() > 300
    assert 0.85 <= _finest(out)[handover].std() / _finest(under)[handover].std() <= 1.3
    assert np.array_equal(out[alpha == 0], under[alpha == 0])  # untouched outside the mask
