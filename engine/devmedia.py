"""Real footage for development runs (``bench``, the evaluation tests), when it is present.

The shared media folder is ``STUDIO_SHARED_MEDIA``, or ``../shared/media`` beside the project.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_CLIP = "obama_address_30s.mov"  # a 30 s talking head with its speech


def shared_media(name: str = "") -> Path:
    """``name`` in the shared media folder (the folder itself for no name); it may not exist."""
    folder = os.environ.get("STUDIO_SHARED_MEDIA") or PROJECT_ROOT.parent / "shared" / "media"
    return Path(folder) / name
