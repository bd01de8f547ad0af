"""Face detection (MediaPipe legacy solutions; the weights ship in the wheel).

MediaPipe's full-range model (``model_selection=1``) finds small and medium faces in any
aspect ratio; the short-range model squashes non-square frames to 128×128 and misses faces
there, but is the better one for close-ups. ``detect_faces`` runs full range first, falls
back to short range on a square-padded copy, and finally to full range on overlapping tiles
(for faces too small to see in the whole frame). Detector graphs are built once per process and
shared behind ``MEDIAPIPE_LOCK``: MediaPipe solution objects are not thread-safe.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass

import numpy as np

from .regions import downscale

# Yaw beyond this (degrees, estimated from the keypoints) is "not frontal": at ~30° one ear
# starts to disappear, which is where the providers' "both ears visible" rule bites.
FRONTAL_MAX_YAW = 30.0
MIN_SCORE = 0.5

MEDIAPIPE_LOCK = threading.Lock()  # every MediaPipe graph (detector, FaceMesh) runs under it
_detectors: dict[int, object] = {}


@dataclass
class FaceBox:
    x: float  # left, relative to the frame width (0..1)
    y: float  # top, relative to the frame height
    width: float  # relative to the frame width
    height: float  # relative to the frame height
    score: float
    frontal: bool
    yaw: float  # degrees; sign: positive when the nose points to the image's right
    keypoints: list[tuple[float, float]] | None = None  # MediaPipe's 6, relative

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("keypoints", None)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in data.items()}

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


def _detector(model_selection: int):
    detector = _detectors.get(model_selection)
    if detector is None:
        from mediapipe.python.solutions import face_detection

        detector = face_detection.FaceDetection(model_selection=model_selection, min_detection_confidence=MIN_SCORE)
        _detectors[model_selection] = detector
    return detector


def estimate_yaw(keypoints: list[tuple[float, float]]) -> float:
    """Head yaw in degrees from MediaPipe's keypoints (eyes, nose, mouth, ear tragions).

    Treats the head as a cylinder: the nose tip sits halfway between the ears when frontal
    and moves toward one ear as the head turns, so yaw ≈ asin(2·r − 1) with r the nose's
    position between the ears (a ratio of x distances, so the frame's aspect cancels).
    """
    (_, _), (_, _), (nose_x, _), (_, _), (ear_r_x, _), (ear_l_x, _) = keypoints
    span = ear_l_x - ear_r_x
    if abs(span) < 1e-6:
        return 90.0
    r = (nose_x - ear_r_x) / span
    return math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * r - 1.0))))


def _boxes(results, *, to_frame) -> list[FaceBox]:
    faces: list[FaceBox] = []
    for det in results.detections or []:
        box = det.location_data.relative_bounding_box
        x, y, w, h = to_frame(box.xmin, box.ymin, box.width, box.height)
        kps = []
        for kp in det.location_data.relative_keypoints:
            kx, ky, _, _ = to_frame(kp.x, kp.y, 0.0, 0.0)
            kps.append((kx, ky))
        yaw = estimate_yaw(kps) if len(kps) == 6 else 0.0
        faces.append(
            FaceBox(
                x=float(x), y=float(y), width=float(w), height=float(h),
                score=float(det.score[0]), frontal=abs(yaw) <= FRONTAL_MAX_YAW, yaw=float(yaw), keypoints=kps,
            )
        )
    return faces


def _pad_square(rgb: np.ndarray) -> tuple[np.ndarray, int, int]:
    h, w = rgb.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    out = np.zeros((side, side, 3), np.uint8)
    out[top : top + h, left : left + w] = rgb
    return out, top, left


def detect_faces(rgb: np.ndarray) -> list[FaceBox]:
    """All faces in an RGB uint8 frame, largest first, in coordinates relative to the frame."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError("detect_faces needs an RGB image")
    # The models look at 128–192 px inputs; more pixels only cost time.
    small = np.ascontiguousarray(downscale(rgb[..., :3], 1280))
    with MEDIAPIPE_LOCK:
        results = _detector(1).process(small)
    faces = _boxes(results, to_frame=lambda x, y, w, h: (x, y, w, h))
    if not faces:
        square, top, left = _pad_square(small)
        side = square.shape[0]
        sh, sw = small.shape[:2]

        def to_frame(x, y, w, h):
            return ((x * side - left) / sw, (y * side - top) / sh, w * side / sw, h * side / sh)

        with MEDIAPIPE_LOCK:
            results = _detector(0).process(square)
        faces = _boxes(results, to_frame=to_frame)
    if not faces:
        faces = _detect_in_tiles(small)
    faces = [f for f in faces if f.score >= MIN_SCORE]
    faces.sort(key=lambda f: f.width * f.height, reverse=True)
    return faces


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def _detect_in_tiles(rgb: np.ndarray) -> list[FaceBox]:
    """Look again in overlapping 60 % crops: the full-range model sees the frame at 192 px,
    where a face under ~8 % of a wide frame's width is too few pixels. Finding such a face
    lets pre-flight say "move closer" instead of "no face"."""
    h, w = rgb.shape[:2]
    th, tw = int(h * 0.6), int(w * 0.6)
    found: list[FaceBox] = []
    for top in (0, (h - th) // 2, h - th):
        for left in (0, (w - tw) // 2, w - tw):
            tile = np.ascontiguousarray(rgb[top : top + th, left : left + tw])

            def to_frame(x, y, bw, bh, top=top, left=left):
                return ((x * tw + left) / w, (y * th + top) / h, bw * tw / w, bh * th / h)

            with MEDIAPIPE_LOCK:
                results = _detector(1).process(tile)
            for face in _boxes(results, to_frame=to_frame):
                same = next((f for f in found if _iou(f, face) > 0.3), None)
                if same is None:
                    found.append(face)
                elif face.score > same.score:
                    found[found.index(same)] = face
    return found
