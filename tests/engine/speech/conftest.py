"""Speech made once for the speech tests."""

from __future__ import annotations

import pytest

from engine import speech


@pytest.fixture(scope="package")
def voice_track() -> speech.Speech:
    return speech.synthesize("This is a voice track for the loader. It lasts a few seconds.")
