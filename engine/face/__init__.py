"""Faces in frames: detection, FaceMesh landmarks, and tracking one person through a video.

- ``detection``: ``detect_faces`` (MediaPipe face detection, with its fallbacks) → ``FaceBox``
  with a yaw estimate; ``FRONTAL_MAX_YAW``.
- ``landmarks``: FaceMesh's 478-point index tables (lips, rigid points, jaw line …) and the
  measures on them (``mouth_aperture``, ``inter_ocular``, ``landmark_yaw``), plus the 2-D
  similarity transforms that align faces.
- ``mesh``: ``face_mesh``, the landmarks of every face in a frame.
- ``regions``: where pixels come from — an RGB array (``ArrayRegions``) or a decoded yuv420p
  frame's planes (``YuvRegions``, ``yuv_planes``).
- ``tracking``: ``FaceTracker`` follows one person (``Identity`` tells people apart).
"""

from .detection import FRONTAL_MAX_YAW, MIN_SCORE, FaceBox, detect_faces, estimate_yaw
from .landmarks import (
    APERTURE_PAIRS,
    EVALUATION_RIGID_INDICES,
    EYE_OUTER,
    FACE_OVAL,
    JAW_INDICES,
    LIP_INDICES,
    LIP_INNER,
    LIP_OUTER,
    MESH_POINTS,
    RIGID_INDICES,
    UNDER_NOSE_INDICES,
    apply_transform,
    inter_ocular,
    invert_transform,
    landmark_yaw,
    mouth_aperture,
    similarity_transform,
)
from .mesh import MESH_MAX_SIDE, face_mesh
from .regions import ArrayRegions, RegionSource, YuvRegions, yuv_planes
from .tracking import FaceTracker, Identity

__all__ = [
    "APERTURE_PAIRS",
    "EVALUATION_RIGID_INDICES",
    "EYE_OUTER",
    "FACE_OVAL",
    "FRONTAL_MAX_YAW",
    "JAW_INDICES",
    "LIP_INDICES",
    "LIP_INNER",
    "LIP_OUTER",
    "MESH_MAX_SIDE",
    "MESH_POINTS",
    "MIN_SCORE",
    "RIGID_INDICES",
    "UNDER_NOSE_INDICES",
    "ArrayRegions",
    "FaceBox",
    "FaceTracker",
    "Identity",
    "RegionSource",
    "YuvRegions",
    "apply_transform",
    "detect_faces",
    "estimate_yaw",
    "face_mesh",
    "inter_ocular",
    "invert_transform",
    "landmark_yaw",
    "mouth_aperture",
    "similarity_transform",
    "yuv_planes",
]
