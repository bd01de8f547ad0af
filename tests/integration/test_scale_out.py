"""The scale-out path: PostgreSQL, Redis and S3 (moto's server over real HTTP).

The settings read the environment once, at start-up, so the worker test runs again in a
child pytest with the scale-out variables set, against the services on this machine.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import BUCKET

REPO = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.getenv("SCALE_OUT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.getenv("SCALE_OUT_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(check) -> bool:
    try:
        check()
    except Exception:
        return False
    return True


@pytest.mark.slow
def test_a_render_runs_on_postgres_redis_and_s3(s3_server):
    if not reachable(lambda: psycopg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"), connect_timeout=3).close()):
        pytest.skip("PostgreSQL is not running on this machine")
    if not reachable(lambda: redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()):
        pytest.skip("Redis is not running on this machine")
    endpoint, client = s3_server
    env = {
        **os.environ,
        "DATABASE_URL": POSTGRES_URL,
        "REDIS_URL": REDIS_URL,
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/integration/test_worker.py", "-q", "-p", "no:cacheprovider",
         "--create-db"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    keys = [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    videos = [key for key in keys if key.endswith("/video.mp4")]
    assert videos and all(key.startswith("teams/") and "/renders/" in key for key in videos), keys
    head = client.head_object(Bucket=BUCKET, Key=videos[0])
    assert head["ContentType"] == "video/mp4"
    assert any(key.endswith("/source.png") for key in keys), keys
