"""Lip sync for video avatars: the per-avatar mouth library, and rendering by unit selection.

No neural lip-sync weights are available, so the mouth a render shows is always one the
creator really made in their footage (data-driven, like Video Rewrite and unit-selection
visual speech synthesis), chosen to follow the mouth trajectory of the new speech.

Preparation (``build_library``, or ``LibraryBuilder`` riding along the normalising pass,
with ``OwnSpeech`` recognising the footage's sound) writes the ``Library``. Rendering
(``synthesize_frames``) predicts this speaker's mouth state for the new speech, picks one
footage frame's mouth per output frame and composites it onto the background frame.

Modules: ``library`` (the file and its landmark tables), ``mouth_model`` (measured and
predicted mouth state), ``atlas`` (the mouth crops' video stream), ``own_speech``,
``build`` (preparation), ``planner`` (unit selection), ``composite`` (mouth onto frame,
lip-shape correction), ``synthesize`` (the frame stream), ``yuv`` (shared pixel helpers).
The background frame order (loop modes, segments, disabled intervals) is ``engine.timeline``;
it skips the footage frames whose own mouth cannot be replaced (``showable_frames``).
"""

from .build import LibraryBuilder, build_library
from .library import LIBRARY_SUFFIX, Library, PreparationReport
from .mouth_model import model_inputs, predict_state
from .own_speech import OwnSpeech
from .planner import SelectionWeights
from .synthesize import RenderedFrame, showable_frames, synthesize_frames

__all__ = [
    "LIBRARY_SUFFIX",
    "Library",
    "LibraryBuilder",
    "OwnSpeech",
    "PreparationReport",
    "RenderedFrame",
    "SelectionWeights",
    "build_library",
    "model_inputs",
    "predict_state",
    "showable_frames",
    "synthesize_frames",
]
