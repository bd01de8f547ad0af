"""A worker process killed (SIGKILL) while a provider renders: the studio's own recovery (the render
sweep re-queues the render, a new worker claims it) polls the saved task id and never sends the
render a second time.

respx cannot reach into another process, so the provider here is a real HTTP server on
127.0.0.1 (the studio reaches it through PROVIDER_BASE_URLS), and the workers are real
`celery worker` processes on a real broker and the test's own SQLite database file.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from providers import services
from providers.models import RemoteJob
from renders.models import Render, RenderEvent
from renders.tasks import render_sweep
from studio.services import user_create
from tests.factories import FIXTURES, ready_avatar
from tests.providers.helpers import PUBLIC
from tests.studio import local_http

REPO = Path(__file__).resolve().parents[2]
KEY = "np-live-SECRET-key-killed-worker-77"
TASK_ID = "np-task-survives-kill"


class FakeNewportAI:
    """NewportAI's two calls on a local server: talking_face answers a task id, getAsyncResult
    says "running" until `finished` is set, then points at a real MP4 on the same server."""

    def __init__(self):
        self.server = local_http.start()
        self.finished = False
        self.server.routes["/api/async/talking_face"] = local_http.body(
            json.dumps({"code": 0, "message": "success", "data": {"taskId": TASK_ID}}).encode(),
            content_type="application/json")
        self.server.routes["/api/getAsyncResult"] = self._poll
        self.server.routes["/result.mp4"] = local_http.body((FIXTURES / "clip.mp4").read_bytes(),
                                                            content_type="video/mp4")

    def _poll(self, handler) -> None:
        task = {"taskId": TASK_ID, "status": 3 if self.finished else 2}
        data = {"task": task, "videos": [{"videoUrl": self.server.url("/result.mp4")}] if self.finished else []}
        local_http.body(json.dumps({"code": 0, "data": data}).encode(), content_type="application/json")(handler)

    def calls(self, path: str) -> list[local_http.Seen]:
        return [seen for seen in self.server.seen if seen.path == path]


def shared_database_url() -> str:
    """The database this test writes, for the worker processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", "render,remote", "--pool", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_for(condition, seconds: float, what: str, worker: subprocess.Popen, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert worker.poll() is None, f"the worker exited while waiting for {what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_submitting_is_replaced_by_one_that_polls_the_same_task(
        real_broker, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from renders.services import ProviderChoice, render_create
    from tests import media_cache

    provider = FakeNewportAI()
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.PROVIDER_BASE_URLS = {"newportai": provider.server.url("")}
    alice = user_create(username="alice", password="correct horse battery")
    avatar = ready_avatar(team=alice.teams.get(), user=alice, kind="video")
    account = services.provider_account_create(team=avatar.team, user=alice, provider="newportai", label="NP",
                                               credentials={"api_key": KEY})
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "REDIS_URL": real_broker,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "JOB_SCRATCH_DIR": str(settings.JOB_SCRATCH_DIR),
        "PUBLIC_BASE_URL": PUBLIC,
        "PROVIDER_BASE_URLS": f"newportai={provider.server.url('')}",
        "NETGUARD_ALLOW_PRIVATE": "1",  # the provider's result host is this machine
        "PROVIDER_POLL_FIRST_SECONDS": "1",
        "PROVIDER_POLL_MAX_SECONDS": "1",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    log = tmp_path / "workers.log"
    first = start_worker(env, log)
    second = None
    try:
        voice = SimpleUploadedFile("voice.wav", media_cache.audio(3.0, "wav").read_bytes(), content_type="audio/wav")
        render = render_create(team=avatar.team, user=alice, avatar=avatar, title="Survives a kill",
                               driver=Render.Driver.AUDIO, audio=voice, provider=ProviderChoice(account=account))
        # The first worker sends the render, saves the task id and polls it at least once...
        wait_for(lambda: RemoteJob.objects.filter(render=render, task_id=TASK_ID, polls__gte=1).exists(), 90,
                 "the first worker to submit and poll", first, log)
        # ...and dies without any chance to clean up.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert Render.objects.get(pk=render.pk).status == Render.Status.RUNNING
        assert RemoteJob.objects.get(render=render).state == RemoteJob.State.POLLING
        polls_before = len(provider.calls("/api/getAsyncResult"))

        # Its heartbeat goes stale; the periodic sweep hands the render back to the queue.
        settings.JOB_STALE_AFTER_SECONDS = 2
        time.sleep(2.5)
        assert render_sweep()["requeued"] == 1
        assert Render.objects.get(pk=render.pk).status == Render.Status.QUEUED
        provider.finished = True

        second = start_worker(env, log)
        wait_for(lambda: Render.objects.get(pk=render.pk).status not in (Render.Status.QUEUED,
                                                                          Render.Status.RUNNING),
                 90, "the second worker to finish the render", second, log)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        if second is not None:
            stop(second)
        local_http.stop(provider.server)

    render = Render.objects.get(pk=render.pk)
    assert render.status == Render.Status.SUCCEEDED, render.error
    assert render.attempts == 2
    assert render.video.read() == (FIXTURES / "clip.mp4").read_bytes()
    submits = provider.calls("/api/async/talking_face")
    assert len(submits) == 1, "the render was sent to the provider twice"
    polls = provider.calls("/api/getAsyncResult")
    assert len(polls) > polls_before
    assert {json.loads(seen.body)["taskId"] for seen in polls} == {TASK_ID}
    kinds = list(RenderEvent.objects.filter(render=render).order_by("at", "id").values_list("kind", flat=True))
    assert kinds.count("submitted") == 1 and "swept" in kinds and "resumed" in kinds
    assert kinds.index("swept") < kinds.index("resumed") < kinds.index("succeeded")
    assert all(seen.headers["authorization"] == f"Bearer {KEY}" for seen in submits + polls)
    assert KEY not in log.read_text()
