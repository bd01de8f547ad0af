"""Rows and fakes shared by the provider tests: a claimed render, a provider's result on a local
server, and the studio's signed media URLs served to a respx-mocked provider by Django itself."""

from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
from django.test import Client
from django.utils import timezone

from providers import services
from providers.models import RemoteJob
from renders.models import Render
from studio.jobs import job_claim
from tests.factories import FIXTURES, store_fixture
from tests.studio import local_http

PUBLIC = "https://studio.example.com"


def queued_render(*, avatar, user, driver=Render.Driver.AUDIO, script="", title="On a provider", **fields) -> Render:
    render = Render(team=avatar.team, avatar=avatar, created_by=user, title=title, driver=driver, script=script,
                    **fields)
    if driver == Render.Driver.AUDIO:
        render.audio.name = store_fixture("clip.mp4", f"{render.key_prefix}voice.mp3")  # providers only fetch it
        render.audio_duration = 3.0
    render.save(force_insert=True)
    return render


def claim(render: Render) -> Render:
    assert job_claim(Render, pk=render.pk, from_statuses=[Render.Status.QUEUED], to_status=Render.Status.RUNNING)
    return Render.objects.get(pk=render.pk)


def start(render: Render, account, **job_fields) -> RemoteJob:
    job = services.remote_job_create(render=render, account=account, **job_fields)
    claim(render)
    services.provider_render_start(render_id=render.pk)
    return RemoteJob.objects.get(pk=job.pk)


def poll(job: RemoteJob) -> RemoteJob:
    """The next scheduled poll, now."""
    RemoteJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    services.provider_poll(job_id=job.pk, token=None)
    return RemoteJob.objects.get(pk=job.pk)


@contextmanager
def provider_cdn():
    """A provider's result host: a real HTTP server on 127.0.0.1 serving a real MP4."""
    server = local_http.start()
    server.routes["/result.mp4"] = local_http.body((FIXTURES / "clip.mp4").read_bytes(), content_type="video/mp4")
    server.routes["/cover.jpg"] = local_http.body((FIXTURES / "poster.jpg").read_bytes(), content_type="image/jpeg")
    server.routes["/captions.srt"] = local_http.body((FIXTURES / "captions.srt").read_bytes(), content_type="text/plain")
    try:
        yield server
    finally:
        local_http.stop(server)


def serve_public_media(request: httpx.Request) -> httpx.Response:
    """respx side effect: a provider fetching one of our PUBLIC_BASE_URL links gets Django's answer."""
    parts = urlsplit(str(request.url))
    headers = {"HTTP_RANGE": request.headers["Range"]} if "Range" in request.headers else {}
    response = Client().generic(request.method, parts.path, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return httpx.Response(response.status_code, headers=dict(response.headers), content=body)
