"""Lip-sync quality, measured by self-reenactment on held-out real footage.

``evaluate(video, split=20.0, out=DIR)`` builds the mouth library from the first ``split``
seconds of a real talking video, renders the rest of the video's *own* audio onto the rest
of its *own* frames (background index k = the held-out frame k), and compares the rendered
frames with the real ones. Because the person really said those words in those frames, the
real footage is the ground truth for every figure:

1. **aperture r** — Pearson correlation of the inner-lip gap (÷ inter-ocular distance) of
   the rendered frames with the real ones.
2. **lip landmark distance** — FaceMesh's 40 lip points, each frame brought into one
   canonical face frame by a similarity transform fitted on rigid points (eye corners, nose
   ridge, forehead, temples: ``face.EVALUATION_RIGID_INDICES``) and scaled so the
   inter-ocular distance is 1; the mean point distance to the real frame's lips. Compared
   with two baselines built from the *library part* of the same footage: a **static mouth**
   (the library's median mouth shape in every frame) and **loudness only** (per frame, the
   library frame whose aperture sits at the same quantile as the held-out frame's loudness
   does among the library's loudness).
3. **P/B/M closed** — share of the held-out audio's P, B, M phones (PocketSphinx timings, as
   the renderer gets them) with at least one rendered frame within ±40 ms whose aperture is
   under the *closed threshold*: the real footage's closed level (2nd percentile of its
   aperture) plus 15 % of its range (to the 98th percentile), and at least 0.02 above it.
   The same share for the real frames says how far the phone timings can be trusted.
4. **audio-visual offset** — the lag (frames, ±5) maximising the correlation of aperture
   with the speech envelope (RMS per frame), for the rendered and for the real frames;
   positive = the mouth follows the sound. The figure is their difference.
5. **PSNR outside the mouth** — rendered vs. the decoded background frame, over the pixels
   outside ``RenderedFrame.mouth_mask`` (> 0) dilated by 10 px; pooled MSE over all frames
   (frames the renderer left untouched count as identical). Measured *before* encoding.
6. **jitter** — mean norm of the lips' frame-to-frame second difference (canonical
   coordinates), rendered ÷ real.

Outputs in ``out``: ``eval.json`` (figures, baselines, pass/fail against ``report.TARGETS``),
``contact_sheet.png`` (real over rendered mouth crops, labelled with time and viseme),
``aperture.png`` (aperture over time: real, rendered, baselines, envelope, P/B/M) and, unless
``write_video=False``, ``compare.mp4`` (real | rendered, with the held-out audio).

**Driven mode** (``driven.evaluate_driven``; ``eval --drive A.wav --drive-text espeak:LANG:TEXT``):
the avatar prepared from the whole footage, driven by *any* voice (no ground truth for the
mouth): the rendered aperture's r with the voice's loudness, its rest in the voice's pauses
and its opening against the person's own, with a loudness-only and an untouched-footage
reference (``driven``'s docstring defines them; targets in ``report.TARGETS``).

Modules: ``run`` (``evaluate``, the figures' JSON, selection oracles, diagnostics),
``metrics`` (``pearson``, ``psnr``, ``best_lag``, ``Canonical``, …: plain numpy, tested on
known inputs; the similarity transform is ``face.similarity_transform``), ``report``
(targets, ``summary_lines``) and ``plots`` (contact sheet, aperture plot).
"""

from .driven import (
    DrivingVoice,
    driving_voices,
    evaluate_driven,
    loudness_mouth,
    mouth_figures,
    own_mouth,
    pause_mask,
)
from .metrics import (
    MASK_DILATION_PX,
    MAX_LAG_FRAMES,
    PBM_PHONES,
    PBM_TOLERANCE_S,
    PSNR_CAP_DB,
    Canonical,
    ClosureCheck,
    aperture_of,
    best_lag,
    closed_share,
    closed_threshold,
    closure_checks,
    closure_runs,
    dilated_mask,
    lagged_correlation,
    lip_distance,
    lip_indices,
    pearson,
    psnr,
    psnr_from_mse,
    second_difference_jitter,
    squared_error,
)
from .plots import aperture_plot, contact_sheet
from .report import TARGETS, driven_summary_lines, summary_lines
from .run import evaluate, selection_oracles

__all__ = [
    "MASK_DILATION_PX",
    "MAX_LAG_FRAMES",
    "PBM_PHONES",
    "PBM_TOLERANCE_S",
    "PSNR_CAP_DB",
    "TARGETS",
    "Canonical",
    "ClosureCheck",
    "DrivingVoice",
    "aperture_of",
    "aperture_plot",
    "best_lag",
    "closed_share",
    "closed_threshold",
    "closure_checks",
    "closure_runs",
    "contact_sheet",
    "dilated_mask",
    "driven_summary_lines",
    "driving_voices",
    "evaluate",
    "evaluate_driven",
    "lagged_correlation",
    "lip_distance",
    "lip_indices",
    "loudness_mouth",
    "mouth_figures",
    "own_mouth",
    "pause_mask",
    "pearson",
    "psnr",
    "psnr_from_mse",
    "second_difference_jitter",
    "selection_oracles",
    "squared_error",
    "summary_lines",
]
