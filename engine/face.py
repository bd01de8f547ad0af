"""Face detection (MediaPipe legacy solutions; the weights ship in the wheel).

MediaPipe's full-range model (``model_selection=1``) finds small and medium faces in any
aspect ratio; the short-range model squashes non-square frames to 128×128 and misses faces
there, but is the better one for close-ups. ``detect_faces`` runs full range first, falls
back to short range on a square-padded copy, and finally to full range on overlapping tiles
(for faces too small to see in the whole frame). Detector graphs are built once per process and
shared behind a lock: MediaPipe solution objects are not thread-safe.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass

import numpy as np

# Yaw beyond this (degrees, estimated from the keypoints) is "not frontal": at ~30° one ear
# starts to disappear, which is where the providers' "both ears visible" rule bites.
FRONTAL_MAX_YAW = 30.0
MIN_SCORE = 0.5

_lock = threading.Lock()
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


def _downscale(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    import cv2

    scale = long_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def detect_faces(rgb: np.ndarray) -> list[FaceBox]:
    """All faces in an RGB uint8 frame, largest first, in coordinates relative to the frame."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError("detect_faces needs an RGB image")
    # The models look at 128–192 px inputs; more pixels only cost time.
    small = np.ascontiguousarray(_downscale(rgb[..., :3], 1280))
    with _lock:
        results = _detector(1).process(small)
    faces = _boxes(results, to_frame=lambda x, y, w, h: (x, y, w, h))
    if not faces:
        square, top, left = _pad_square(small)
        side = square.shape[0]
        sh, sw = small.shape[:2]

        def to_frame(x, y, w, h):
            return ((x * side - left) / sw, (y * side - top) / sh, w * side / sw, h * side / sh)

        with _lock:
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

            with _lock:
                results = _detector(1).process(tile)
            for face in _boxes(results, to_frame=to_frame):
                same = next((f for f in found if _iou(f, face) > 0.3), None)
                if same is None:
                    found.append(face)
                elif face.score > same.score:
                    found[found.index(same)] = face
    return found


# --------------------------------------------------------------------------------------
# FaceMesh: 478 landmarks (468 + refined lips/eyes/irises), tracking, mouth measures
# --------------------------------------------------------------------------------------

MESH_POINTS = 478
EYE_OUTER = (33, 263)  # outer eye corners, image-left then image-right
# Lip contours, each in drawing order (corner → along the top → corner → along the bottom).
LIP_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146])
LIP_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95])
LIP_INDICES = np.concatenate([LIP_OUTER, LIP_INNER])
# Points that move with the skull, not with the jaw or the lips: eye corners, nose bridge
# and dorsum, forehead, the nose's wings. The tracker and the renderer align faces by them.
RIGID_INDICES = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 8, 98, 327, 129, 358])
# The lip-sync evaluation's own rigid points (eye corners, nose ridge and tip, forehead,
# temples) for its canonical face frame: chosen apart from the renderer's, so the measure
# does not share the renderer's alignment, and fixed, so its figures stay comparable.
EVALUATION_RIGID_INDICES = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 127, 356])
# The jaw line from the image-left cheek (level with the nose) round the chin to the right.
JAW_INDICES = np.array([93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323])
# Under the nose, right to left of the image: the top edge of the lower face.
UNDER_NOSE_INDICES = np.array([323, 423, 327, 326, 2, 97, 98, 203, 93])
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                      152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109])
# Upper/lower inner-lip pairs at the middle and a third of the way to each corner.
APERTURE_PAIRS = ((13, 14), (82, 87), (312, 317))

_mesh_graphs: dict[tuple[bool, int], object] = {}
MESH_MAX_SIDE = 1280


def _new_mesh_graph(static: bool, max_faces: int):
    from mediapipe.python.solutions import face_mesh as mp_face_mesh

    return mp_face_mesh.FaceMesh(
        static_image_mode=static,
        max_num_faces=max_faces,
        refine_landmarks=True,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


def _mesh_points(results, width: int, height: int) -> list[np.ndarray]:
    """MediaPipe results → (478, 3) float32 arrays in pixels (z in the same pixel scale)."""
    faces: list[np.ndarray] = []
    for landmarks in results.multi_face_landmarks or []:
        points = np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32)
        if len(points) != MESH_POINTS:
            continue
        points[:, 0] *= width
        points[:, 1] *= height
        points[:, 2] *= width
        faces.append(points)
    return faces


def _face_area(points: np.ndarray) -> float:
    span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    return float(span[0] * span[1])


def _mesh3d(rgb: np.ndarray, *, static: bool, max_faces: int = 4) -> list[np.ndarray]:
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError("face_mesh needs an RGB image")
    h, w = rgb.shape[:2]
    small = np.ascontiguousarray(_downscale(rgb[..., :3], MESH_MAX_SIDE))
    key = (bool(static), max_faces)
    with _lock:
        graph = _mesh_graphs.get(key)
        if graph is None:
            graph = _mesh_graphs[key] = _new_mesh_graph(static, max_faces)
        results = graph.process(small)
    faces = _mesh_points(results, small.shape[1], small.shape[0])
    if small.shape[:2] != (h, w):
        scale = w / small.shape[1]
        for face in faces:
            face *= scale
    faces.sort(key=_face_area, reverse=True)
    return faces


def face_mesh(rgb: np.ndarray, *, static: bool = False) -> list[np.ndarray]:
    """FaceMesh landmarks of every face (up to 4) in an RGB uint8 frame, largest face first.

    Each face is a (478, 2) float32 array of pixel coordinates (x, y). ``static=True`` treats
    the picture on its own: FaceMesh's own (short-range) detector, plus ``detect_faces`` for
    faces too small for it, each meshed in a crop around it. ``static=False`` uses a shared
    video-mode graph that follows faces from the previous call — right for consecutive
    frames of one video. For following one person through a video, use ``FaceTracker``.
    """
    if static:
        return [face[:, :2].copy() for face in _all_faces(ArrayRegions(np.ascontiguousarray(rgb[..., :3])))]
    return [face[:, :2].copy() for face in _mesh3d(rgb, static=False)]


def _all_faces(regions: "RegionSource", max_side: int = 960) -> list[np.ndarray]:
    """(478, 3) landmarks of every face, largest first: FaceMesh on the (downscaled) frame,
    then a crop around each ``detect_faces`` box it missed."""
    small, scale = regions.full(max_side)
    faces = _mesh3d(small, static=True)
    for face in faces:
        face *= scale
    if len(faces) < 4:
        for box in detect_faces(small)[:4]:
            cx = (box.x + box.width / 2) * small.shape[1] * scale
            cy = (box.y + box.height / 2) * small.shape[0] * scale
            if any(_inside(face, cx, cy) for face in faces):
                continue
            side = max(box.width * small.shape[1], box.height * small.shape[0]) * 2.2 * scale
            crop_side = int(min(320, max(192, side))) // 2 * 2
            crop = np.ascontiguousarray(regions.region(cx - side / 2, cy - side / 2, side, crop_side))
            found = _mesh3d(crop, static=True, max_faces=1)
            if found:
                face = found[0]
                face[:, :2] = face[:, :2] * (side / crop.shape[1]) + (cx - side / 2, cy - side / 2)
                face[:, 2] *= side / crop.shape[1]
                faces.append(face)
    faces.sort(key=_face_area, reverse=True)
    return faces


def _inside(face: np.ndarray, x: float, y: float) -> bool:
    lo, hi = face[:, :2].min(axis=0), face[:, :2].max(axis=0)
    return bool(lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1])


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners, in the landmarks' units."""
    a, b = landmarks[EYE_OUTER[0], :2], landmarks[EYE_OUTER[1], :2]
    return float(np.hypot(*(b - a)))


def mouth_aperture(landmarks: np.ndarray) -> float:
    """Inner-lip vertical gap (mean of the middle and two side pairs) / inter-ocular distance."""
    gaps = [np.hypot(*(landmarks[lower, :2] - landmarks[upper, :2])) for upper, lower in APERTURE_PAIRS]
    return float(np.mean(gaps) / max(inter_ocular(landmarks), 1e-6))


def similarity_transform(src: np.ndarray, dst: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """The 2×3 similarity (rotation, uniform scale, shift) taking ``src`` points closest to ``dst``
    in least squares (Umeyama without reflection), as ``dtype`` (float32 for OpenCV and the
    renderer; float64 where it is a measurement)."""
    src = np.asarray(src, np.float64)[:, :2]
    dst = np.asarray(dst, np.float64)[:, :2]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    var = (a**2).sum()
    if var < 1e-12:
        return np.array([[1.0, 0.0, mu_d[0] - mu_s[0]], [0.0, 1.0, mu_d[1] - mu_s[1]]], dtype)
    # For 2-D similarities, the optimum has a closed form in complex numbers.
    sa, sb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    z = (np.conj(sa) * sb).sum() / var
    m = np.array([[z.real, -z.imag], [z.imag, z.real]])
    shift = mu_d - m @ mu_s
    return np.array([[m[0, 0], m[0, 1], shift[0]], [m[1, 0], m[1, 1], shift[1]]], dtype)


def apply_transform(matrix: np.ndarray, points: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """``matrix`` (2×3) applied to the x, y of ``points``, computed in ``dtype``."""
    points = np.asarray(points, dtype)
    return points[..., :2] @ matrix[:, :2].T + matrix[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine transform (closed form: no LAPACK call per frame)."""
    m = np.asarray(matrix, np.float64)
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    if abs(det) < 1e-12:
        raise ValueError("the transform is not invertible")
    inv = np.array([[d, -b], [-c, a]]) / det
    shift = -inv @ m[:, 2]
    return np.array([[inv[0, 0], inv[0, 1], shift[0]], [inv[1, 0], inv[1, 1], shift[1]]], np.float32)


def landmark_yaw(landmarks: np.ndarray) -> float:
    """Head yaw in degrees from the nose tip's place between the cheek contours (as
    ``estimate_yaw``, with FaceMesh's points 234/454 for the ears)."""
    left, right, nose = landmarks[234, 0], landmarks[454, 0], landmarks[1, 0]
    span = right - left
    if abs(span) < 1e-6:
        return 90.0
    r = (nose - left) / span
    return math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * r - 1.0))))


# -- regions of a frame as RGB (from an RGB array, or straight from YUV planes) ------------


class RegionSource:
    """Where a tracker gets pixels: square regions resampled to a given size, or the whole
    frame downscaled. Subclasses read an RGB array or a decoded YUV frame's planes."""

    width: int
    height: int

    def region(self, x0: float, y0: float, side: float, out: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def full(self, max_side: int) -> tuple[np.ndarray, float]:  # pragma: no cover
        raise NotImplementedError


def _square_matrix(x0: float, y0: float, side: float, out: int) -> np.ndarray:
    s = out / side
    return np.array([[s, 0.0, -x0 * s + 0.5 * s - 0.5], [0.0, s, -y0 * s + 0.5 * s - 0.5]], np.float32)


class ArrayRegions(RegionSource):
    def __init__(self, rgb: np.ndarray):
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ValueError("FaceTracker needs an RGB image")
        self.rgb = rgb[..., :3]
        self.height, self.width = rgb.shape[:2]

    def region(self, x0, y0, side, out):
        import cv2

        return cv2.warpAffine(self.rgb, _square_matrix(x0, y0, side, out), (out, out), flags=cv2.INTER_AREA
                              if side > out * 1.5 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def full(self, max_side):
        small = np.ascontiguousarray(_downscale(self.rgb, max_side))
        return small, self.width / small.shape[1]


class YuvRegions(RegionSource):
    """Regions of a decoded yuv420p frame converted to RGB only where needed (a full-frame
    accurate RGB conversion costs ~25 ms at 720p; a 320-pixel face crop well under 1 ms)."""

    def __init__(self, frame):
        import cv2

        self.frame = frame
        self.width, self.height = frame.width, frame.height
        self.planes = yuv_planes(frame)
        self._cv2 = cv2

    def region(self, x0, y0, side, out):
        cv2 = self._cv2
        out += out % 2
        m = _square_matrix(x0, y0, side, out)
        half = _square_matrix(x0 / 2, y0 / 2, side / 2, out // 2)
        i420 = np.empty((out * 3 // 2, out), np.uint8)
        q = out // 2
        i420[:out] = cv2.warpAffine(self.planes[0], m, (out, out), flags=cv2.INTER_LINEAR, borderValue=16)
        u = cv2.warpAffine(self.planes[1], half, (q, q), flags=cv2.INTER_LINEAR, borderValue=128)
        v = cv2.warpAffine(self.planes[2], half, (q, q), flags=cv2.INTER_LINEAR, borderValue=128)
        flat = i420[out:].reshape(-1)  # I420: all of U, then all of V, packed
        flat[: q * q] = u.reshape(-1)
        flat[q * q :] = v.reshape(-1)
        # OpenCV's BT.601 matrix: exact colour does not matter to FaceMesh.
        return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)

    def full(self, max_side):
        w, h = self.width, self.height
        scale = min(1.0, max_side / max(w, h))
        tw, th = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
        small = self.frame.reformat(width=tw, height=th, format="rgb24").to_ndarray()
        return small, w / tw


def yuv_planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (no copy) of a yuv420p frame's Y, U and V planes, padding stripped."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        raise ValueError(f"expected a yuv420p frame, got {frame.format.name}")
    out = []
    for index, plane in enumerate(frame.planes):
        w = frame.width if index == 0 else (frame.width + 1) // 2
        h = frame.height if index == 0 else (frame.height + 1) // 2
        out.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w])
    return out[0], out[1], out[2]


# -- identity: which of several faces is the target --------------------------------------

_ID_SIZE = 40
# Where eye corners and the mouth's middle sit in the identity patch (fractions of its side).
_ID_ANCHORS = np.array([[0.22, 0.30], [0.78, 0.30], [0.50, 0.80]], np.float32) * _ID_SIZE
_ID_GEOMETRY = np.concatenate([RIGID_INDICES, FACE_OVAL[::3], [61, 291, 0, 17]])


def _identity_patch(regions: RegionSource, points: np.ndarray) -> np.ndarray:
    """A 40×40 colour patch of the face, aligned by the eyes and mouth, zero-mean unit-norm."""
    import cv2

    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    side = float(max(hi - lo)) * 1.3 + 1.0
    centre = (lo + hi) / 2
    x0, y0 = centre - side / 2
    crop_size = 128
    crop = regions.region(float(x0), float(y0), side, crop_size)
    scale = crop_size / side
    local = (points[:, :2] - (x0, y0)) * scale
    anchors = np.stack([local[EYE_OUTER[0]], local[EYE_OUTER[1]], (local[13] + local[14]) / 2])
    m = similarity_transform(anchors, _ID_ANCHORS)
    patch = cv2.warpAffine(crop, m, (_ID_SIZE, _ID_SIZE), flags=cv2.INTER_AREA).astype(np.float32)
    lab = cv2.cvtColor(patch / 255.0, cv2.COLOR_RGB2Lab)
    lab -= lab.reshape(-1, 3).mean(axis=0) * np.array([1.0, 0.0, 0.0], np.float32)  # keep skin tone
    lab /= np.array([100.0, 30.0, 30.0], np.float32)
    vector = lab.reshape(-1)
    return vector / max(float(np.linalg.norm(vector)), 1e-6)


def _identity_geometry(points: np.ndarray) -> np.ndarray:
    sub = points[_ID_GEOMETRY, :2].astype(np.float64)
    sub = sub - sub.mean(axis=0)
    return (sub / max(np.sqrt((sub**2).sum(axis=1).mean()), 1e-6)).reshape(-1)


@dataclass
class Identity:
    patch: np.ndarray
    geometry: np.ndarray

    @classmethod
    def of(cls, regions: RegionSource, points: np.ndarray) -> "Identity":
        return cls(_identity_patch(regions, points), _identity_geometry(points))

    def similarity(self, other: "Identity") -> float:
        """1.0 for the same picture; different people score clearly lower."""
        appearance = float(np.dot(self.patch, other.patch))
        shape = math.exp(-float(np.linalg.norm(self.geometry - other.geometry)) / 0.5)
        return 0.7 * appearance + 0.3 * shape


class FaceTracker:
    """Follows one person through a video with FaceMesh in video mode.

    The target is the face most like ``reference`` (an RGB photo of the person; compared by
    aligned appearance and landmark geometry, no embeddings), else the largest face of the
    first frame that has one. After that the tracker keeps the face that continues the
    previous frame's; when it loses the face it looks again over the whole frame and takes
    the face most like the target, so it never switches to somebody else.

    FaceMesh runs on a square crop around the previous face (resampled to ``CROP`` pixels),
    so its cost does not grow with the frame size. ``track`` returns the target's (478, 2)
    landmarks in frame pixels, or None when the target is not in the frame.
    """

    CROP = 320  # at most; a smaller face is cropped at its own resolution (FaceMesh sees 192 px)
    MIN_CROP = 224
    WINDOW = 2.2  # crop side, in face sizes
    SAME_FACE = 0.35  # a face continues the previous one when its rigid points moved < this × IOD
    # Similarity a face needs to be taken for the reference photo's person (a different
    # photo: lighting and expression differ), and to be taken back as the tracked person
    # after losing them (same footage: the same person scores 0.9+, a look-alike ~0.7).
    REFERENCE_MATCH = 0.5
    REACQUIRE_MATCH = 0.82

    def __init__(self, *, reference: np.ndarray | None = None):
        # One face per crop: with more, MediaPipe runs its detector on every frame.
        self._graph = _new_mesh_graph(False, 1)
        self._identity: Identity | None = None  # the tracked person, as seen in the video
        self._reference: Identity | None = None
        if reference is not None:
            photo = ArrayRegions(np.ascontiguousarray(reference[..., :3]))
            faces = _all_faces(photo, max_side=1280)
            if not faces:
                from .errors import InputRejected

                raise InputRejected(
                    "We couldn't find a face in the reference photo; use a clear, front-facing photo of the person.",
                    field="reference", code="reference_no_face",
                )
            self._reference = Identity.of(photo, faces[0])
        self._previous: np.ndarray | None = None
        self._window: tuple[float, float, float] | None = None
        self.frames = 0
        self.landmarks3d: np.ndarray | None = None  # the last result with z (pixels)

    # -- public --------------------------------------------------------------------------
    def track(self, rgb: np.ndarray) -> np.ndarray | None:
        points = self.track_regions(ArrayRegions(rgb))
        return None if points is None else points[:, :2].copy()

    def track_regions(self, regions: RegionSource) -> np.ndarray | None:
        """Like ``track`` for any ``RegionSource``; returns (478, 3) with z, or None."""
        self.frames += 1
        points = None
        if self._previous is not None:
            points = self._follow(regions)
        if points is None:
            points = self._acquire(regions)
        self._previous = points
        self.landmarks3d = points
        return points

    def close(self) -> None:
        graph, self._graph = self._graph, None
        if graph is not None:
            graph.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def identity(self) -> Identity | None:
        return self._identity

    # -- internals -----------------------------------------------------------------------
    def _place_window(self, points: np.ndarray) -> None:
        lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
        centre = (lo + hi) / 2
        side = float(max(hi - lo)) * self.WINDOW
        if self._window is not None:
            x0, y0, old = self._window
            old_centre = np.array([x0 + old / 2, y0 + old / 2])
            # Keep the crop still while the face stays well inside it: video mode follows the
            # face from the previous frame's position *in the crop*.
            if np.abs(centre - old_centre).max() < 0.12 * old and 0.85 < side / old < 1.18:
                return
        self._window = (float(centre[0] - side / 2), float(centre[1] - side / 2), side)

    def _follow(self, regions: RegionSource) -> np.ndarray | None:
        x0, y0, side = self._window
        size = int(min(self.CROP, max(self.MIN_CROP, side))) // 2 * 2
        crop = np.ascontiguousarray(regions.region(x0, y0, side, size))
        results = self._graph.process(crop)
        faces = _mesh_points(results, crop.shape[1], crop.shape[0])
        if not faces:
            return None
        scale = side / crop.shape[1]
        previous = self._previous
        iod = max(inter_ocular(previous), 1.0)
        best, best_distance = None, math.inf
        for face in faces:
            face[:, :2] = face[:, :2] * scale + (x0, y0)
            face[:, 2] *= scale
            distance = float(np.linalg.norm(face[RIGID_INDICES, :2] - previous[RIGID_INDICES, :2], axis=1).mean())
            if distance < best_distance:
                best, best_distance = face, distance
        if best_distance > self.SAME_FACE * iod:
            return None
        self._place_window(best)
        return best

    def _candidates(self, regions: RegionSource) -> list[np.ndarray]:
        return _all_faces(regions)

    def _acquire(self, regions: RegionSource) -> np.ndarray | None:
        faces = self._candidates(regions)
        if not faces:
            return None
        if self._identity is None and self._reference is None:
            chosen = max(faces, key=_face_area)
        else:
            known, bar = (self._identity, self.REACQUIRE_MATCH) if self._identity else (
                self._reference, self.REFERENCE_MATCH)
            scored = [(known.similarity(Identity.of(regions, face)), face) for face in faces]
            score, chosen = max(scored, key=lambda item: item[0])
            if score < bar:
                return None
        if self._identity is None:
            self._identity = Identity.of(regions, chosen)
        # Reset the video-mode graph: its memory of the last face may be somebody else.
        self._graph.reset()
        self._window = None
        self._place_window(chosen)
        return chosen
