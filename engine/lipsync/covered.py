"""Is the mouth covered in this footage frame? Per-frame evidence that does not depend on the
cover being rare.

The mouth library's PCA outlier test (``build._assemble``) only catches what is unusual in
the footage: a headset microphone in front of the mouth for much of a clip is learnt by the
PCA and passes. The photo pre-flight's kind of evidence (``photo.rig.mouth_visibility``: lips
redder than the skin round them) holds frame by frame, whatever the rest of the footage
shows; here it is measured on each frame's canonical mouth crop, with the measure that
decides: how different the lips look from the ring of skin round them.
"""

from __future__ import annotations

import math

import numpy as np

# Lips differ from the skin round them by 6-18 ΔE (Lab) in every frame of our footage (a
# painted astronaut at 144 to 480 lines, a 256-pixel Obama), open or closed; a cover wide
# enough to hide them (a microphone's foam, a hand, a card) puts lips and ring on the same
# surface: under 1.5. Unless the lips are still redder than the ring (the photo check's
# threshold), a frame under this is covered, however many frames look the same. (Comparing
# with the footage's own clearest frames instead flags closed lips in short clips, and fails
# where the cover is in nearly every frame.)
MIN_LIP_DIFFERENCE = 3.0
SMOOTH = 2  # frames either side that vote on each frame's verdict

# limited-range YUV → RGB (ITU-R BT.601 / BT.709)
_YUV_TO_RGB = {
    601: np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]], np.float32),
    709: np.array([[1.164, 0.0, 1.793], [1.164, -0.213, -0.533], [1.164, 2.112, 0.0]], np.float32),
}


def crop_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, colour: int) -> np.ndarray:
    """A yuv420p crop (as ``yuv.warp_planes`` makes it) as RGB uint8."""
    import cv2

    h, w = y.shape
    uu = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 128.0
    vv = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 128.0
    yy = y.astype(np.float32) - 16.0
    yuv = np.stack([yy, uu, vv], axis=-1)
    rgb = yuv @ _YUV_TO_RGB.get(colour, _YUV_TO_RGB[601]).T
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def mouth_cues(planes, landmarks: np.ndarray, colour: int) -> tuple[float, float]:
    """(lip redness over the skin round the mouth, in Lab a* units, as the photo check
    measures it (``photo.rig.mouth_visibility``); ΔE between the lips' and that ring's median
    Lab colours) of one frame's mouth crop, ``landmarks`` (478, ≥2) in the crop's pixels. In
    floating point: a crop's lips are a few hundred pixels, and whole a* units would round a
    faint redness to nothing."""
    import cv2

    from ..face import LIP_OUTER, inter_ocular
    from ..photo.rig import lips_and_ring

    io = inter_ocular(landmarks)
    grow = max(2, int(io * 0.12))
    # Only the lips and the ring round them are measured: the window around them (even
    # corners, for the half-size chroma planes) costs a fifth of the whole crop.
    y, u, v = planes
    lo = np.floor(landmarks[LIP_OUTER, :2].min(axis=0)) - grow - 2
    hi = np.ceil(landmarks[LIP_OUTER, :2].max(axis=0)) + grow + 2
    x0, y0 = (int(max(0, c)) // 2 * 2 for c in lo)
    x1, y1 = min(y.shape[1], int(hi[0]) // 2 * 2 + 2), min(y.shape[0], int(hi[1]) // 2 * 2 + 2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return math.nan, math.nan  # too few pixels to say
    landmarks = landmarks[:, :2] - (x0, y0)
    half = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
    rgb = crop_rgb(y[y0:y1, x0:x1], u[half], v[half], colour)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lips, ring = lips_and_ring(rgb.shape, landmarks)
    if lips.sum() < 10 or ring.sum() < 10:
        return math.nan, math.nan  # too few pixels to say
    lips_lab, ring_lab = np.median(lab[lips], axis=0), np.median(lab[ring], axis=0)
    return float(lips_lab[1] - ring_lab[1]), float(np.linalg.norm(lips_lab - ring_lab))


def covered_frames(cues: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Frames (of those ``measured``) whose mouth is covered, from their ``mouth_cues`` (n, 2)."""
    from ..photo.rig import MIN_LIP_REDNESS

    covered = np.zeros(len(cues), bool)
    if not measured.any():
        return covered
    redness, difference = cues[measured].T
    covered[measured] = (difference < MIN_LIP_DIFFERENCE) & (redness < MIN_LIP_REDNESS)
    # A cover stays for several frames (a hand passing takes a tenth of a second); one frame
    # alone is a blink of the measures (a blurred or badly placed lip line), not a cover.
    window = np.ones(2 * SMOOTH + 1, np.float32)
    votes = np.convolve(covered.astype(np.float32), window, mode="same")
    voters = np.convolve(measured.astype(np.float32), window, mode="same")
    return measured & (votes > voters / 2)
