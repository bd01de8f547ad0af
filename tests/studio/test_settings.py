import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start(**env) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter, as a server would at start-up."""
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO, env={**clean, "DJANGO_SETTINGS_MODULE": "studio.settings", **env},
        capture_output=True, text=True, timeout=60,
    )


def test_it_refuses_to_start_in_production_without_a_secret_key():
    run = start(DEBUG="0")
    assert run.returncode != 0
    assert "SECRET_KEY is not set. With DEBUG=0" in run.stderr


def test_it_starts_in_production_with_a_secret_key():
    run = start(DEBUG="0", SECRET_KEY="x" * 60)
    assert run.returncode == 0, run.stderr


def test_it_starts_in_development_without_a_secret_key():
    assert start(DEBUG="1").returncode == 0
