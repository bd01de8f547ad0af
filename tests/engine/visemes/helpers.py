"""What the viseme tests share: a sentence full of bilabials and viseme runs."""

from __future__ import annotations

import itertools

BILABIAL_SENTENCE = "Bob met Pam by the maple bench"


def viseme_runs(labels: list[str]) -> list[tuple[str, int]]:
    return [(label, len(list(run))) for label, run in itertools.groupby(labels)]
