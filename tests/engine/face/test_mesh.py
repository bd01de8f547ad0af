"""engine.face.mesh: FaceMesh landmarks of every face in a picture."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data

from engine import face as face_module


def test_face_mesh_gives_478_points_per_face_largest_first():
    small = np.asarray(Image.fromarray(data.astronaut()).resize((300, 300)))
    pair = np.full((512, 820, 3), 128, np.uint8)
    pair[:, :512] = data.astronaut()
    pair[212:, 520:820] = small
    faces = face_module.face_mesh(pair, static=True)
    assert len(faces) == 2
    assert all(f.shape == (478, 2) and f.dtype == np.float32 for f in faces)
    assert faces[0][:, 0].mean() < 512 < faces[1][:, 0].mean()  # the bigger (left) one first
    assert face_module.face_mesh(data.coffee(), static=True) == []
    assert len(face_module.LIP_INDICES) == 40 and len(set(face_module.LIP_INDICES.tolist())) == 40
