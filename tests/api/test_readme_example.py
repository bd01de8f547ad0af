"""The README's API example, run as written against a live server and the real engine.

Only the key, the address and the file change: the example makes a video avatar, this runs
it with a photo, which the engine prepares and renders in seconds (tasks run inline).
"""

import os
import re
from pathlib import Path

import pytest

from api.services import api_key_create
from engine import media
from studio.services import user_create
from tests import media_cache

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.slow


def readme_python_example() -> str:
    api_section = README.read_text().split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", api_section, re.DOTALL)[1]


@pytest.mark.django_db(transaction=True)
def test_the_readme_python_example_runs(live_server, tmp_path, monkeypatch):
    alice = user_create(username="alice", password="correct horse battery")
    _, secret = api_key_create(team=alice.teams.get(), user=alice, name="README")
    (tmp_path / "me.png").write_bytes(media_cache.photo().read_bytes())
    source = readme_python_example()
    for written, used in [
        ('"http://localhost:8000/api/v1"', f'"{live_server.url}/api/v1"'),
        ('"Bearer avs_…"', f'"Bearer {secret}"'),
        ('upload("me.mp4", "video", "video/mp4")', 'upload("me.png", "photo", "image/png")'),
    ]:
        assert written in source, written
        source = source.replace(written, used)
    monkeypatch.chdir(tmp_path)
    exec(compile(source, "README.md", "exec"), {})
    video = tmp_path / "spring-launch.mp4"
    assert media.sniff_type(video) == "video/mp4"
    assert os.path.getsize(video) > 1000
