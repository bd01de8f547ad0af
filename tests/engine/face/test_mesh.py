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


def test_run_mesh_reads_what_process_gives(tmp_path):
    from engine.face.mesh import new_mesh_graph, run_mesh

    rgb = np.ascontiguousarray(data.astronaut())
    graph = new_mesh_graph(True, 1)
    try:
        results = graph.process(rgb)
        expected = np.array([(p.x * 512, p.y * 512, p.z * 512) for p in results.multi_face_landmarks[0].landmark],
                            np.float32)
        faces = run_mesh(graph, rgb)
        assert run_mesh(graph, np.ascontiguousarray(data.coffee()[:, :, :3])) == []
    finally:
        graph.close()
    assert len(faces) == 1 and faces[0].shape == (478, 3) and faces[0].dtype == np.float32
    np.testing.assert_allclose(faces[0], expected, atol=1e-3)


def test_landmarks_with_other_fields_are_read_one_by_one():
    from mediapipe.framework.formats import landmark_pb2

    from engine.face.mesh import _landmark_array

    plain = landmark_pb2.NormalizedLandmarkList()
    plain.landmark.add(x=0.25, y=0.5, z=-0.125)
    plain.landmark.add(x=1.0, y=0.0, z=0.0)  # y and z 0.0: still on the wire in proto2 when set
    visible = landmark_pb2.NormalizedLandmarkList()
    visible.landmark.add(x=0.25, y=0.5, z=-0.125, visibility=0.9)
    np.testing.assert_array_equal(_landmark_array(plain), [[0.25, 0.5, -0.125], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(_landmark_array(visible), [[0.25, 0.5, -0.125]])
