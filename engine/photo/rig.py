"""What one photo gives the animation, measured once: ``PhotoRig.from_image`` and ``check_photo``.

The rig holds the photo, its FaceMesh landmarks (with depth), a face frame (origin at the
mouth centre, x along the eyes, y down, in pixels), the triangle mesh of the lower face and
the weights that say how each mesh point follows the jaw, the lips and the upper lip, the
lip and skin colours the mouth interior is shaded from, the photo's own teeth when it shows
them, the person mask and a background plate for the head's small movements.

``check_photo`` is the pre-flight: a photo the method cannot animate (no face, several
faces, a face too small, a profile, a covered mouth) is refused with a sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputRejected
from ..face import FACE_OVAL, LIP_INNER, LIP_OUTER, inter_ocular, landmark_yaw, mouth_aperture

MIN_FACE_PX = 90  # the face's height (forehead to chin); below it the mouth is a few pixels wide
MAX_YAW_DEG = 30.0  # the warp is planar: past ~30° the far cheek hides the jaw it would move
SECOND_FACE_SHARE = 0.4  # a second face this large (share of the main one's height) is a second person
# Covered mouth: lips are redder than the skin round them (Lab a*) and the line between them
# is darker than the lips. A hand, a mask or a scarf over the mouth has neither.
MIN_LIP_REDNESS = 2.5
MIN_LIP_LINE_CONTRAST = 0.04

# Lip contours split at the corners (drawing order of ``LIP_OUTER``/``LIP_INNER``).
UPPER_INNER = LIP_INNER[:11]  # 78 → 308 along the top
LOWER_INNER = np.concatenate([LIP_INNER[10:], LIP_INNER[:1]])  # 308 → 78 along the bottom
UPPER_OUTER = LIP_OUTER[:11]
LOWER_OUTER = np.concatenate([LIP_OUTER[10:], LIP_OUTER[:1]])
INNER_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
# Eye contours, image-left eye then image-right eye: (outer corner, upper lid, inner corner, lower lid).
EYES = (
    (33, (246, 161, 160, 159, 158, 157, 173), 133, (7, 163, 144, 145, 153, 154, 155)),
    (263, (466, 388, 387, 386, 385, 384, 398), 362, (249, 390, 373, 374, 380, 381, 382)),
)


def _faces(rgb: np.ndarray) -> list[np.ndarray]:
    from ..face.mesh import all_faces
    from ..face.regions import ArrayRegions

    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
        raise InputRejected("The photo must be an RGB picture.", field="source", code="photo_unreadable")
    return all_faces(ArrayRegions(np.ascontiguousarray(rgb[..., :3])))


def face_height(landmarks: np.ndarray) -> float:
    return float(np.ptp(landmarks[FACE_OVAL, 1]))


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)


def _polygon_mask(shape, polygons, value=1) -> np.ndarray:
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], value)
    return mask.astype(bool)


def lips_and_ring(shape, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the lips (between the outer and inner lip lines) and of the ring of skin round
    them (an eighth of the inter-ocular wide): what a covered mouth makes look alike."""
    import cv2

    outer = _polygon_mask(shape, [landmarks[LIP_OUTER, :2]])
    lips = outer & ~_polygon_mask(shape, [landmarks[LIP_INNER, :2]])
    grow = max(2, int(inter_ocular(landmarks) * 0.12))
    ring = cv2.dilate(lips.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=grow).astype(bool)
    return lips, ring & ~outer


def mouth_visibility(rgb: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(lip redness over the skin round the mouth, in Lab a* units; darkness of the line
    between the lips against the lips, as a share of the lips' lightness)."""
    import cv2

    lab = _lab(rgb)
    lips, ring = lips_and_ring(rgb.shape, landmarks)
    if lips.sum() < 10 or ring.sum() < 10:
        return 0.0, 0.0
    io = inter_ocular(landmarks)
    redness = float(np.median(lab[..., 1][lips]) - np.median(lab[..., 1][ring]))
    # The line: the darkest pixels along the inner-lip midline (open or closed), against the lips.
    line = np.zeros(rgb.shape[:2], np.uint8)
    mid = (landmarks[UPPER_INNER, :2] + landmarks[LOWER_INNER[::-1], :2]) / 2
    cv2.polylines(line, [np.round(mid[2:-2]).astype(np.int32)], False, 1, thickness=max(1, int(io * 0.03)))
    light = lab[..., 0]
    lips_light = float(np.median(light[lips]))
    line_light = float(np.percentile(light[line.astype(bool)], 20)) if line.any() else lips_light
    return redness, (lips_light - line_light) / max(lips_light, 1.0)


def check_photo(rgb: np.ndarray) -> np.ndarray:
    """Pre-flight for a photo avatar: the main face's (478, 3) landmarks, or ``InputRejected``
    with a sentence naming what to change."""
    faces = _faces(rgb)
    if not faces:
        raise InputRejected(
            "We couldn't find a face in the photo; use a well-lit photo where one face looks at the camera.",
            field="source", code="photo_no_face")
    main = faces[0]
    height = face_height(main)
    others = [f for f in faces[1:] if face_height(f) >= SECOND_FACE_SHARE * height]
    if others:
        raise InputRejected(
            f"We found {len(others) + 1} faces in the photo; a photo avatar needs exactly one person in it — "
            "crop the photo to the one who should speak.", field="source", code="photo_multiple_faces")
    if height < MIN_FACE_PX:
        raise InputRejected(
            f"The face is {height:.0f} pixels tall; it needs at least {MIN_FACE_PX} — use a larger photo or crop "
            "closer to the face.", field="source", code="photo_face_too_small")
    yaw = landmark_yaw(main)
    if abs(yaw) > MAX_YAW_DEG:
        raise InputRejected(
            f"The face is turned about {abs(yaw):.0f}° away from the camera; a photo avatar needs a face looking "
            "at the camera (within about 25°), with both eyes and the whole mouth visible.",
            field="source", code="photo_profile")
    redness, line = mouth_visibility(rgb, main)
    if redness < MIN_LIP_REDNESS and line < MIN_LIP_LINE_CONTRAST:
        raise InputRejected(
            "We can't see the lips in the photo; use a photo where nothing (a hand, a mask, a microphone) covers "
            "the mouth.", field="source", code="photo_mouth_covered")
    return main


@dataclass
class FaceFrame:
    """Pixels ↔ the face frame: origin at the mouth centre, x along the eye line, y down."""

    origin: np.ndarray
    ex: np.ndarray
    ey: np.ndarray

    def to_face(self, points: np.ndarray) -> np.ndarray:
        d = np.asarray(points, np.float64)[..., :2] - self.origin
        return np.stack([d @ self.ex, d @ self.ey], axis=-1)

    def vectors_to_image(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, np.float64)
        return v[..., :1] * self.ex + v[..., 1:2] * self.ey


class PhotoRig:
    """A photo prepared for ``animate``; build it with ``PhotoRig.from_image``."""

    def __init__(self, rgb: np.ndarray, landmarks: np.ndarray, *, person_mask: np.ndarray | None = None):
        from .mesh import build_mesh

        self.rgb = np.ascontiguousarray(rgb[..., :3])
        self.height, self.width = self.rgb.shape[:2]
        self.landmarks = np.asarray(landmarks, np.float64)
        points = self.landmarks[:, :2]
        self.io = inter_ocular(self.landmarks)
        ex = points[263] - points[33]
        ex = ex / max(np.linalg.norm(ex), 1e-6)
        ey = np.array([-ex[1], ex[0]])
        centre = (points[13] + points[14]) / 2
        self.frame = FaceFrame(centre, ex, ey)
        self.photo_aperture = mouth_aperture(self.landmarks)
        self.face_height = face_height(self.landmarks)

        face_xy = self.frame.to_face(points)
        self.mouth_half_width = float(abs(face_xy[291, 0] - face_xy[61, 0]) / 2)
        self.upper_lip_thickness = float(max(face_xy[13, 1] - face_xy[0, 1], 0.05 * self.io))
        self.lower_lip_thickness = float(max(face_xy[17, 1] - face_xy[14, 1], 0.06 * self.io))
        self.photo_gap = float(max(face_xy[14, 1] - face_xy[13, 1], 0.0))
        self.mesh = build_mesh(self)
        self._colours()
        self.source = _closed_lips(self) if self.photo_gap > 0.5 else self.rgb
        self.person_mask = person_mask if person_mask is not None else _person_mask(self.rgb)
        # The face is the person, whatever the segmentation thought of a beard or glasses.
        import cv2

        oval = np.zeros(self.rgb.shape[:2], np.uint8)
        cv2.fillPoly(oval, [np.round(points[FACE_OVAL]).astype(np.int32)], 1)
        self.person_mask = np.maximum(self.person_mask, oval.astype(np.float32))
        self._plate: np.ndarray | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_image(cls, rgb: np.ndarray) -> PhotoRig:
        """The rig of a photo (RGB uint8), after ``check_photo``'s refusals."""
        landmarks = check_photo(rgb)
        return cls(rgb, landmarks)

    def _colours(self) -> None:
        """Lip colour, skin colour, teeth colour and the photo's own teeth (if it shows them)."""
        lm = self.landmarks[:, :2]
        outer = _polygon_mask(self.rgb.shape, [lm[LIP_OUTER]])
        inner = _polygon_mask(self.rgb.shape, [lm[LIP_INNER]])
        lips = outer & ~inner
        pixels = self.rgb[lips].astype(np.float32)
        self.lip_colour = np.median(pixels, axis=0) if len(pixels) else np.array([150.0, 90.0, 90.0])
        # The darkest lip pixel outside the opening: the floor the "no hole" test measures by.
        light = self.rgb.astype(np.float32).mean(axis=2)
        self.darkest_lip = float(np.percentile(light[lips], 1)) if lips.any() else 0.0
        cheeks = _polygon_mask(self.rgb.shape, [lm[[50, 101, 36, 205, 187, 123]], lm[[280, 330, 266, 425, 411, 352]]])
        skin = self.rgb[cheeks].astype(np.float32)
        self.skin_colour = np.median(skin, axis=0) if len(skin) else self.lip_colour
        # Drawn teeth: an off-white lit like the face (its brightest skin), a little warm.
        highlight = float(np.percentile(skin.mean(axis=1), 90)) if len(skin) else 200.0
        # Tinted by the photo's own colour cast (the skin's hue, softened): a neutral grey next
        # to warm skin reads as blue.
        cast = (self.skin_colour / max(float(self.skin_colour.max()), 1.0)) ** 0.35
        self.teeth_colour = 225.0 * cast * float(np.clip(highlight / 200.0, 0.5, 1.0))
        # The photo's own teeth: bright, unsaturated pixels inside its mouth opening.
        self.photo_teeth = None
        if inner.sum() >= 12:
            hsv_s = self.rgb.max(axis=2).astype(np.float32) - self.rgb.min(axis=2)
            bright = (light > max(110.0, np.median(light[lips]) * 1.15)) & (hsv_s < 0.45 * np.maximum(light, 1))
            share = float((bright & inner).sum() / inner.sum())
            if share > 0.25:
                self.photo_teeth = inner  # the mask of the photo's opening: sampled by ``mouth``
                self.teeth_colour = np.median(self.rgb[bright & inner].astype(np.float32), axis=0) * 0.95
        self.teeth_share = 0.0 if self.photo_teeth is None else share

    # ------------------------------------------------------------------ the head's layer

    @property
    def plate(self) -> np.ndarray:
        """The photo with the person taken out round the head, filled from the background nearby
        (what shows where the head moves away from); built on first use."""
        if self._plate is None:
            self._plate = _fill_background(self.rgb, self.person_mask)
        return self._plate

    def head_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the part of the frame the animation changes — the head, the neck
        and a margin for the head's movements."""
        lm = self.landmarks[:, :2]
        lo, hi = lm.min(axis=0), lm.max(axis=0)
        w, h = hi - lo
        x0 = lo[0] - 0.45 * w
        x1 = hi[0] + 0.45 * w
        y0 = lo[1] - 0.6 * h
        y1 = hi[1] + 0.75 * h
        return (int(max(0, math.floor(x0))), int(max(0, math.floor(y0))),
                int(min(self.width, math.ceil(x1))), int(min(self.height, math.ceil(y1))))


def _closed_lips(rig: PhotoRig) -> np.ndarray:
    """The photo with its mouth opening (and the dark corners of a smile) filled from the lips
    round it: the warp reads lips there when it closes the mouth; the inside is drawn anew."""
    import cv2

    lm = rig.landmarks[:, :2]
    inner = lm[LIP_INNER].copy()
    # Reach a little past the inner corners, where a smile leaves dark gaps.
    centre = inner.mean(axis=0)
    for corner in (0, 10):
        inner[corner] = centre + (inner[corner] - centre) * 1.12
    mask = np.zeros(rig.rgb.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 255)
    grow = max(1, int(round(0.02 * rig.io)))
    mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    ys, xs = np.nonzero(mask)
    pad = int(0.2 * rig.io) + 4
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, rig.height)
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, rig.width)
    out = rig.rgb.copy()
    out[y0:y1, x0:x1] = cv2.inpaint(np.ascontiguousarray(rig.rgb[y0:y1, x0:x1]), mask[y0:y1, x0:x1],
                                    max(3, grow * 2), cv2.INPAINT_TELEA)
    return out


def _person_mask(rgb: np.ndarray) -> np.ndarray:
    """Person probability 0..1 (float32) from selfie segmentation, slightly feathered."""
    import cv2
    from mediapipe.python.solutions import selfie_segmentation

    from ..face.detection import MEDIAPIPE_LOCK

    with MEDIAPIPE_LOCK:
        segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)
        try:
            raw = segmenter.process(np.ascontiguousarray(rgb)).segmentation_mask
        finally:
            segmenter.close()
    if raw is None:
        return np.ones(rgb.shape[:2], np.float32)
    mask = np.clip((raw.astype(np.float32) - 0.5) * 4.0 + 0.5, 0.0, 1.0)
    radius = max(1, int(max(rgb.shape[:2]) * 0.003))
    return cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), 0)


def _fill_background(rgb: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The background with the person's place filled by the background nearby: normalised
    blurs at growing radii on a small copy (only a thin band round the head is ever
    uncovered, a few pixels wide, so a soft fill is enough there)."""
    import cv2

    h, w = rgb.shape[:2]
    factor = max(1.0, max(h, w) / 256.0)
    size = (max(1, int(round(w / factor))), max(1, int(round(h / factor))))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    keep = (mask_8bit(cv2.resize(person, size, interpolation=cv2.INTER_AREA)) == 0).astype(np.float32)
    filled = small.copy()
    missing = keep < 0.5
    for sigma in (2, 6, 18, 54):
        k = int(sigma * 3) | 1
        num = cv2.GaussianBlur(small * keep[..., None], (k, k), sigma)
        den = cv2.GaussianBlur(keep, (k, k), sigma)[..., None]
        ok = (den[..., 0] > 0.05) & missing
        filled[ok] = (num / np.maximum(den, 1e-6))[ok]
        missing &= ~ok
        if not missing.any():
            break
    if missing.any():  # no background anywhere: the photo's own mean colour
        filled[missing] = small.reshape(-1, 3).mean(axis=0)
    big = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    # Filled wherever any of the person shows, their soft edge included: a plate that kept
    # the faint fringe of hair showed it as a ghost outline where the head moved away.
    person_here = (mask_8bit(person) > 0)[..., None]
    return np.where(person_here, np.clip(big, 0, 255).astype(np.uint8), rgb)


def mask_8bit(person: np.ndarray) -> np.ndarray:
    """The person mask (0..1 float) as the animation carries it through its warps (uint8)."""
    return np.clip(person * 255 + 0.5, 0, 255).astype(np.uint8)
