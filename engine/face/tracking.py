"""Following one person through a video: ``FaceTracker``, and ``Identity`` to tell people apart."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .landmarks import EYE_OUTER, FACE_OVAL, RIGID_INDICES, inter_ocular, similarity_transform
from .mesh import all_faces, face_area, new_mesh_graph, run_mesh
from .regions import ArrayRegions, RegionSource

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
        self._graph = new_mesh_graph(False, 1)
        self._identity: Identity | None = None  # the tracked person, as seen in the video
        self._reference: Identity | None = None
        if reference is not None:
            photo = ArrayRegions(np.ascontiguousarray(reference[..., :3]))
            faces = all_faces(photo, max_side=1280)
            if not faces:
                from ..errors import InputRejected

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
        faces = run_mesh(self._graph, crop)
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
        return all_faces(regions)

    def _acquire(self, regions: RegionSource) -> np.ndarray | None:
        faces = self._candidates(regions)
        if not faces:
            return None
        if self._identity is None and self._reference is None:
            chosen = max(faces, key=face_area)
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
