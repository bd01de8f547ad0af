"""``animate``: the photo speaking a mouth trajectory, one RGB frame at a time.

Per frame: the trajectory's six mouth parameters → a mouth pose → the mesh's vertex
positions → a backward displacement over the animated box (mesh warp + eyelids), composed
with the head's movement, then one ``cv2.remap`` of the photo; the mouth's inside is drawn
where the lips part, and the person is laid over the background plate by the person mask
carried through the same map (the background stays still; what the head uncovers is
filled). Outside the animated box the frame is the photo (or its new background) as is.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .life import Life, plan_life
from .mesh import MouthPose, pose_from, vertex_offsets
from .mouth import render_mouth
from .rig import EYES, PhotoRig, mask_8bit
from .warp import HeadMotion, eyelid_displacement, mesh_displacement

# The lips move ahead of the sound they shape: the mouth opens before a vowel sounds and
# closes before a /p/ bursts (audiovisual speech studies put the lead at roughly 50–200 ms).
# The trajectory is timed to the sound, so each frame shows it this much later.
MOUTH_LEAD_S = 0.08
HEAD_RADIUS_IO = 1.6  # neck pivot to the face's middle, for turning head angles into shifts
NECK_FADE_IO = 1.1


def trajectory_frame(trajectory, t: float) -> dict:
    """The trajectory's parameters at ``t`` seconds, linearly interpolated; the nearest viseme."""
    from ..visemes.mapping import PARAMETERS

    n = trajectory.frame_count
    pos = min(max(t * trajectory.fps, 0.0), n - 1)
    k = int(np.floor(pos))
    k2 = min(k + 1, n - 1)
    f = pos - k
    values: dict = {name: (1 - f) * float(getattr(trajectory, name)[k]) + f * float(getattr(trajectory, name)[k2])
                    for name in PARAMETERS}
    values["viseme"] = trajectory.visemes[int(round(pos))]
    return values


def _eye_lines(rig: PhotoRig) -> list[dict]:
    lm = rig.landmarks[:, :2]
    eyes = []
    for outer, upper, inner, lower in EYES:
        a, b = lm[outer], lm[inner]
        lo_x, hi_x = sorted((a[0], b[0]))
        xs = np.arange(int(np.floor(lo_x)), int(np.ceil(hi_x)) + 1, dtype=np.float64)
        up = np.concatenate([[a], lm[list(upper)], [b]])
        down = np.concatenate([[a], lm[list(lower)], [b]])
        up_y = np.interp(xs, *up[np.argsort(up[:, 0])].T)
        down_y = np.interp(xs, *down[np.argsort(down[:, 0])].T)
        down_y = np.maximum(down_y, up_y)
        width = hi_x - lo_x
        eyes.append({"xs": xs, "upper": up_y, "lower": down_y, "top": up_y - 0.25 * width})
    return eyes


def _eye_window(eye: dict, box) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (int(max(eye["xs"][0], x0)), int(max(np.floor(eye["top"].min()), y0)),
            int(min(eye["xs"][-1] + 1, x1)), int(min(np.ceil(eye["lower"].max()) + 1, y1)))


def _background_plate(rig: PhotoRig, background) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the frame outside the animated box, the picture the warp reads, the background plate
    behind the person) for ``background``: None keeps the photo's own."""
    if background is None:
        return rig.rgb, rig.source, rig.plate
    from ..background import _cover, _load_background_image, parse_background

    chosen = parse_background(background)
    if isinstance(chosen, tuple):
        plate = np.empty_like(rig.rgb)
        plate[:] = chosen
    else:
        plate = _cover(_load_background_image(chosen), rig.width, rig.height)
    alpha = rig.person_mask[..., None]

    def over(picture):
        return np.clip(picture * alpha + plate * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)

    return over(rig.rgb), over(rig.source), plate


class Animator:
    """Renders frames of one rig; ``frame(params, eyes, pitch, yaw, roll)`` → RGB uint8."""

    def __init__(self, rig: PhotoRig, background=None):
        import cv2

        self.rig = rig
        self.box = rig.head_box()
        x0, y0, x1, y1 = self.box
        self.base, source, plate = _background_plate(rig, background)
        self.plate = plate
        self.plate_box = np.ascontiguousarray(plate[y0:y1, x0:x1])
        self.field = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.gx, self.gy = gx, gy
        lm = rig.landmarks[:, :2]
        chin = lm[152]
        pivot = chin + rig.frame.ey * (0.9 * rig.io)
        self.head = HeadMotion(self.box, pivot, chin, NECK_FADE_IO * rig.io, rig.frame.ey)
        self.eyes = _eye_lines(rig)
        self.eye_windows = [_eye_window(eye, self.box) for eye in self.eyes]
        self._dirty: list[tuple[int, int, int, int]] = []
        self.rgba = np.dstack([source, mask_8bit(rig.person_mask)])
        self._cv2 = cv2

    def pose(self, params: dict) -> MouthPose:
        return pose_from(params, self.rig.io)

    def frame(self, params: dict, eyes: float = 0.0, pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0
              ) -> np.ndarray:
        """One RGB frame: the mouth at ``params`` (a trajectory frame), the eyes closed by
        ``eyes`` (0…1), the head turned by ``pitch``/``yaw``/``roll`` degrees."""
        cv2 = self._cv2
        rig, mesh = self.rig, self.rig.mesh
        x0, y0, x1, y1 = self.box
        pose = self.pose(params)
        offsets = vertex_offsets(mesh, pose, rig)
        moved = mesh.face_xy + offsets
        dst = mesh.points + rig.frame.vectors_to_image(offsets)

        # Face-local displacement (mouth, eyelids), in the photo's own coordinates.
        field = self.field
        windows = []
        for window in self._dirty:
            wx0, wy0, wx1, wy1 = window
            field[wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0] = 0.0
        window = mesh_displacement(mesh.points, dst, mesh.triangles, self.box, field)
        if window is not None:
            windows.append(window)
        for eye, eye_window in zip(self.eyes, self.eye_windows):
            if eyes > 1e-3:
                eyelid_displacement(field, self.box, eye, eyes)
                windows.append(eye_window)
        self._dirty = windows

        # The head's movement over the whole box, then the face-local part read through it.
        radius = HEAD_RADIUS_IO * rig.io
        shift = rig.frame.vectors_to_image(np.array([np.sin(np.deg2rad(yaw)) * radius,
                                                     np.sin(np.deg2rad(pitch)) * radius]))
        hx, hy = self.head.displacement(roll, (float(shift[0]), float(shift[1])))
        map_x = self.gx + hx
        map_y = self.gy + hy
        pad = int(np.ceil(max(abs(float(shift[0])), abs(float(shift[1]))) + rig.io * 0.05)) + 2
        for wx0, wy0, wx1, wy1 in windows:
            ox0, oy0 = max(wx0 - pad, x0) - x0, max(wy0 - pad, y0) - y0
            ox1, oy1 = min(wx1 + pad, x1) - x0, min(wy1 + pad, y1) - y0
            qx, qy = map_x[oy0:oy1, ox0:ox1], map_y[oy0:oy1, ox0:ox1]
            part = field[wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0]
            inner = cv2.remap(part, qx - wx0, qy - wy0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
            qx += inner[..., 0]
            qy += inner[..., 1]
        # Photo and person mask in one resampling.
        person = cv2.remap(self.rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        lower_mid = mesh.lower_inner[len(mesh.lower_inner) // 2]
        lower_shift = rig.frame.vectors_to_image(offsets[lower_mid])
        inside = render_mouth(rig, moved[mesh.upper_inner], moved[mesh.lower_inner], pose, lower_shift)
        # For measuring: the mesh where the mouth put it (before the head's movement) and
        # the mouth's opening as drawn in this frame ((x, y, alpha) in frame pixels).
        self.last_points = dst
        self.last_opening = None
        if inside is not None:
            mx, my, colour, alpha = inside
            h, w = alpha.shape
            ox0, oy0 = max(mx - pad, x0), max(my - pad, y0)
            ox1, oy1 = min(mx + w + pad, x1), min(my + h + pad, y1)
            if ox1 > ox0 and oy1 > oy0:
                # Where the head's movement alone takes these output pixels in the mouth box.
                sx = self.gx[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0] + hx[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0] - mx
                sy = self.gy[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0] + hy[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0] - my
                layer = cv2.remap(np.dstack([colour, alpha]), sx, sy, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                a = layer[..., 3:4]
                self.last_opening = (ox0, oy0, a[..., 0].copy())
                region = person[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0, :3]
                region[:] = np.clip(region * (1 - a) + layer[..., :3] * a + 0.5, 0, 255).astype(np.uint8)

        frame = self.base.copy()
        frame[y0:y1, x0:x1] = self._over_background(person, hx, hy)
        return frame

    def _over_background(self, person: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        """The moved person (RGB + mask ``a′``) over the background that stays still.

        The photo is person·a + background·(1 − a); moved, the background must stay, so the
        moved photo gets (1 − a′)·(plate − the plate moved with the head) added. Where
        a′ = 1 that is nothing; where a′ = 0 every pixel read was background, so the sum is
        the plate itself; only the person's soft edge needs the moved plate, read there alone
        (a whole-box resampling and blend took a third of the frame's time)."""
        cv2 = self._cv2
        composed = cv2.cvtColor(person, cv2.COLOR_RGBA2RGB)
        alpha = np.ascontiguousarray(person[..., 3])
        cv2.copyTo(self.plate_box, cv2.compare(alpha, 0, cv2.CMP_EQ), composed)
        found = cv2.findNonZero(cv2.inRange(alpha, 1, 254))
        if found is not None:
            xs, ys = found[:, 0, 0], found[:, 0, 1]
            at = ys * alpha.shape[1] + xs  # flat indices: ``take`` is several times quicker
            at_x = (xs + self.box[0]).astype(np.float32) + hx.take(at)
            at_y = (ys + self.box[1]).astype(np.float32) + hy.take(at)
            moved_plate = cv2.remap(self.plate, at_x[None], at_y[None], cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)[0].astype(np.float32)
            a = alpha.take(at).astype(np.float32)[:, None] * np.float32(1 / 255)
            flat = composed.reshape(-1, 3)
            blended = flat.take(at, axis=0) + (1.0 - a) * (self.plate_box.reshape(-1, 3).take(at, axis=0) - moved_plate)
            flat[at] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return composed


def animate(rig: PhotoRig, trajectory, samples: np.ndarray, sample_rate: int, fps: float, n_frames: int,
            background=None, *, seed: int = 0, life: Life | None = None, frames: range | None = None
            ) -> Iterator[np.ndarray]:
    """``n_frames`` RGB frames (uint8, the photo's size) of the photo speaking ``trajectory``
    at ``fps``; ``samples``/``sample_rate``: the speech, for the blinks and the head's nods.
    ``background``: None (the photo's own), an (r, g, b) colour or an image path. ``frames``:
    only these of the ``n_frames`` (each is the same whichever others are made, so several
    animators can share the work)."""
    fps = float(fps)
    animator = Animator(rig, background)
    life = life or plan_life(samples, sample_rate, fps, n_frames, seed)
    for k in range(n_frames) if frames is None else frames:
        params = trajectory_frame(trajectory, k / fps + MOUTH_LEAD_S)
        yield animator.frame(params, float(life.eyes[k]), float(life.pitch[k]), float(life.yaw[k]),
                             float(life.roll[k]))
