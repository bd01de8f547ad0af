"""Phonemes → visemes → a per-frame mouth trajectory, with coarticulation.

The renderers (video and photo avatars) draw the mouth from a ``Trajectory``: six
continuous parameters per output frame, each in [0, 1], plus the viseme shown in each frame.

- ``jaw``      jaw opening (0 closed … 1 widest "aa")
- ``width``    lip width / spreading (0.5 neutral, 1 wide "ee", 0 narrow "oo")
- ``round``    lip rounding and protrusion
- ``closure``  lip closure (1 = lips pressed together, as for P/B/M and rest)
- ``tuck``     lower lip tucked under the upper teeth (F/V)
- ``teeth``    how much teeth show

Public API:

- ``VISEMES``: the Oculus/MPEG-4 set of 15 (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou).
- ``ESPEAK_TO_VISEME`` / ``ARPABET_TO_VISEME``: phoneme tables; diphthongs map to several
  visemes and are split in time (``aI`` → aa + ih, ``OW`` → oh + ou, …).
- ``trajectory_from_speech(speech, fps=25) -> Trajectory`` for synthesized scripts.
- ``trajectory_from_audio(samples, sample_rate, fps=25) -> Trajectory`` for voice tracks
  (PocketSphinx phones + VAD + loudness).
- ``trajectory_from_phonemes(phonemes, samples, sample_rate, fps, alphabet)`` for any timeline.
- ``Trajectory.to_json()`` / ``Trajectory.from_json()``; ``plot_trajectory(...)`` draws the PNG.

How it is built:

1. The timeline becomes viseme segments. Pauses shorter than 120 ms *hold* the previous
   shape; longer ones are silence, where the mouth relaxes to closed. /h/, glottal stops and
   unknown phonemes borrow the next sound's shape.
2. Shapes blend by dominance functions (Cohen & Massaro): each segment's dominance is its
   strength inside the segment and decays exponentially outside it, faster after (carry-over)
   than before (anticipation). PP, FF and ou are strong and narrow; kk, DD, nn, /h/ and schwa
   are weak, so they take their neighbours' shape; vowels reach up to 200 ms back over the
   consonants before them. Each frame averages five sub-samples so short phonemes between
   frame times are not lost or aliased.
3. Jaw opening is scaled by the smoothed loudness (quiet speech, smaller mouth).
4. Hard rules: every bilabial gets fully closed frames in the 40–120 ms before its release;
   every viseme run lasts at least 2 frames (a single frame survives only as the transition
   between two closures); silence longer than 120 ms ends exactly at rest (closed).

Everything is deterministic: the same timeline and audio give the same trajectory.

The package's modules, in the order a trajectory is built:

- ``mapping``: the viseme set, target shapes, dominance, phoneme → viseme tables.
- ``segments``: a phoneme timeline → viseme segments (silences, held pauses, borrowers).
- ``coarticulation``: dominance blending per frame and the loudness gain on the jaw.
- ``rules``: the hard rules (bilabial closures, minimum runs, rest in silence).
- ``trajectory``: ``Trajectory`` and ``trajectory_from_phonemes`` / ``_speech`` / ``_audio``.
- ``plot``: ``plot_trajectory``.
"""

from .coarticulation import ANTICIPATION_LIMIT, CARRYOVER_LIMIT
from .mapping import (
    ARPABET_TO_VISEME,
    BORROWED,
    DOMINANCE,
    ESPEAK_TO_VISEME,
    PARAMETERS,
    REST,
    SCHWA,
    TARGETS,
    VISEMES,
    Dominance,
    phoneme_to_visemes,
)
from .plot import plot_trajectory
from .rules import CLOSURE_MAX, CLOSURE_MIN, MIN_RUN, RELAX_TIME, enforce_min_run
from .segments import HOLD_PAUSE, Segment
from .trajectory import Trajectory, trajectory_from_audio, trajectory_from_phonemes, trajectory_from_speech

__all__ = [
    "ANTICIPATION_LIMIT",
    "ARPABET_TO_VISEME",
    "BORROWED",
    "CARRYOVER_LIMIT",
    "CLOSURE_MAX",
    "CLOSURE_MIN",
    "DOMINANCE",
    "ESPEAK_TO_VISEME",
    "HOLD_PAUSE",
    "MIN_RUN",
    "PARAMETERS",
    "RELAX_TIME",
    "REST",
    "SCHWA",
    "TARGETS",
    "VISEMES",
    "Dominance",
    "Segment",
    "Trajectory",
    "enforce_min_run",
    "phoneme_to_visemes",
    "plot_trajectory",
    "trajectory_from_audio",
    "trajectory_from_phonemes",
    "trajectory_from_speech",
]
