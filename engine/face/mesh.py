"""FaceMesh on whole frames: the landmarks of every face, and the shared FaceMesh graphs."""

from __future__ import annotations

import numpy as np

from .detection import MEDIAPIPE_LOCK, detect_faces
from .landmarks import MESH_POINTS
from .regions import ArrayRegions, RegionSource, downscale

_mesh_graphs: dict[tuple[bool, int], object] = {}
MESH_MAX_SIDE = 1280


def new_mesh_graph(static: bool, max_faces: int):
    from mediapipe.python.solutions import face_mesh as mp_face_mesh

    return mp_face_mesh.FaceMesh(
        static_image_mode=static,
        max_num_faces=max_faces,
        refine_landmarks=True,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


# One NormalizedLandmark on the wire when it holds just x, y and z (as FaceMesh's do): the
# list's field tag and length, then three tagged little-endian floats.
_LANDMARK_WIRE = np.dtype([("entry", "u1", 2), ("x_tag", "u1"), ("x", "<f4"), ("y_tag", "u1"), ("y", "<f4"),
                           ("z_tag", "u1"), ("z", "<f4")])
_LANDMARK_TAGS = (0x0A, 0x0F, 0x0D, 0x15, 0x1D)


def _landmark_array(landmarks) -> np.ndarray:
    """A NormalizedLandmarkList → (n, 3) float32, read from its serialised bytes in one
    NumPy call; 478 × 3 attribute reads in Python cost ~0.5 ms a frame, most of the
    tracking thread's own time. Lists with other fields set are read attribute by attribute."""
    data = landmarks.SerializeToString()
    if len(data) % _LANDMARK_WIRE.itemsize == 0:
        wire = np.frombuffer(data, _LANDMARK_WIRE)
        tags = (wire["entry"][:, 0], wire["entry"][:, 1], wire["x_tag"], wire["y_tag"], wire["z_tag"])
        if all((column == tag).all() for column, tag in zip(tags, _LANDMARK_TAGS)):
            return np.stack([wire["x"], wire["y"], wire["z"]], axis=1)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32)


def _in_pixels(lists, width: int, height: int) -> list[np.ndarray]:
    faces: list[np.ndarray] = []
    for landmarks in lists or []:
        points = _landmark_array(landmarks)
        if len(points) != MESH_POINTS:
            continue
        points *= np.array([width, height, width], np.float32)
        faces.append(points)
    return faces


def run_mesh(graph, rgb: np.ndarray) -> list[np.ndarray]:
    """The (478, 3) float32 landmarks in pixels (z in the same scale) of every face FaceMesh
    ``graph`` finds in ``rgb``: ``graph.process`` without its own overhead (it builds a
    namedtuple class and converts every output stream on each call: ~0.7 ms a frame, paid
    for every frame of every video preparation). Same inputs, same timestamps."""
    from mediapipe.python import packet_getter

    graph._graph_outputs.clear()
    graph._simulated_timestamp += 33333  # what ``process`` steps by (30 fps)
    packet = graph._make_packet(graph._input_stream_type_info["image"], rgb)
    graph._graph.add_packet_to_input_stream(stream="image", packet=packet.at(graph._simulated_timestamp))
    graph._graph.wait_until_idle()
    output = graph._graph_outputs.get("multi_face_landmarks")
    lists = packet_getter.get_proto_list(output) if output is not None and not output.is_empty() else []
    return _in_pixels(lists, rgb.shape[1], rgb.shape[0])


def face_area(points: np.ndarray) -> float:
    span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    return float(span[0] * span[1])


def _mesh3d(rgb: np.ndarray, *, static: bool, max_faces: int = 4) -> list[np.ndarray]:
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError("face_mesh needs an RGB image")
    h, w = rgb.shape[:2]
    small = np.ascontiguousarray(downscale(rgb[..., :3], MESH_MAX_SIDE))
    key = (bool(static), max_faces)
    with MEDIAPIPE_LOCK:
        graph = _mesh_graphs.get(key)
        if graph is None:
            graph = _mesh_graphs[key] = new_mesh_graph(static, max_faces)
        faces = run_mesh(graph, small)
    if small.shape[:2] != (h, w):
        scale = w / small.shape[1]
        for face in faces:
            face *= scale
    faces.sort(key=face_area, reverse=True)
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
        return [face[:, :2].copy() for face in all_faces(ArrayRegions(np.ascontiguousarray(rgb[..., :3])))]
    return [face[:, :2].copy() for face in _mesh3d(rgb, static=False)]


def all_faces(regions: RegionSource, max_side: int = 960) -> list[np.ndarray]:
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
    faces.sort(key=face_area, reverse=True)
    return faces


def _inside(face: np.ndarray, x: float, y: float) -> bool:
    lo, hi = face[:, :2].min(axis=0), face[:, :2].max(axis=0)
    return bool(lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1])
