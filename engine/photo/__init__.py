"""Photo avatars: one portrait made to speak the same mouth trajectory the video avatars use.

- ``rig``: ``PhotoRig.from_image(rgb)`` measures the photo once (landmarks, mesh, colours,
  person mask); ``check_photo(rgb)`` is its pre-flight (a sentence for what it can't animate).
- ``mesh``: the lower face's triangle mesh, its per-vertex weights, and the mouth pose of
  one trajectory frame.
- ``warp``: dense backward maps (mesh, eyelids, head movement) for ``cv2.remap``.
- ``mouth``: the inside of the mouth where the lips part (cavity, tongue, teeth).
- ``life``: blinks and head movement from the speech (seeded).
- ``animate``: ``animate(rig, trajectory, samples, sample_rate, fps, n_frames, background)``
  yields the frames one at a time.

The method and its figures: docs/photo.md.
"""

from .animate import Animator, animate, trajectory_frame
from .life import Life, blink_closure, blink_schedule, plan_life
from .mesh import GAP_PER_JAW, MouthPose, pose_from
from .rig import MIN_FACE_PX, PhotoRig, check_photo

__all__ = [
    "GAP_PER_JAW",
    "MIN_FACE_PX",
    "Animator",
    "Life",
    "MouthPose",
    "PhotoRig",
    "animate",
    "blink_closure",
    "blink_schedule",
    "check_photo",
    "plan_life",
    "pose_from",
    "trajectory_frame",
]
