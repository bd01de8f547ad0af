"""Footage and a mouth library shared by the lip-sync tests (built once for the package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.lipsync import build_library
from tests import mediagen


@pytest.fixture(scope="package")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lipsync")


@pytest.fixture(scope="package")
def speaking(root) -> Path:
    """12 s of the astronaut speaking: her mouth opens and closes with espeak's timeline."""
    return mediagen.make_speaking_video(root / "speaking.mp4", seconds=12.0)


@pytest.fixture(scope="package")
def library(root, speaking):
    path = root / "speaking.npz"
    report = build_library(speaking, path)
    return path, report
