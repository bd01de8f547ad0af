"""A provider render polled by a real Celery worker on the `remote` queue, over a real broker."""

import logging
import time

import httpx
import pytest
import respx

from providers import services
from renders.models import Render
from studio.services import user_create
from tests.factories import FIXTURES, ready_avatar
from tests.providers.helpers import PUBLIC, claim, provider_cdn, queued_render

KEY = "np-live-SECRET-key-worker-42"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_polls_a_newportai_render_to_the_end(embedded_worker, settings, caplog):
    caplog.set_level(logging.INFO)
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.NETGUARD_ALLOW_PRIVATE = True
    settings.PROVIDER_POLL_FIRST_SECONDS = 0.2
    alice = user_create(username="alice", password="correct horse battery")
    avatar = ready_avatar(team=alice.teams.get(), user=alice, kind="video")
    account = services.provider_account_create(team=avatar.team, user=alice, provider="newportai", label="NP",
                                               credentials={"api_key": KEY})
    with respx.mock(assert_all_called=False) as mock, provider_cdn() as cdn:
        mock.route(host="127.0.0.1").pass_through()
        submit = mock.post("https://api.newportai.com/api/async/talking_face").mock(
            return_value=httpx.Response(200, json={"code": 0, "data": {"taskId": "w-1"}}))
        polls = mock.post("https://api.newportai.com/api/getAsyncResult").mock(side_effect=[
            httpx.Response(200, json={"code": 0, "data": {"task": {"status": 1}}}),
            httpx.Response(200, json={"code": 0, "data": {"task": {"status": 2}}}),
            httpx.Response(200, json={"code": 0, "data": {"task": {"status": 3},
                                                          "videos": [{"videoUrl": cdn.url("/result.mp4")}]}}),
        ])
        render = queued_render(avatar=avatar, user=alice)
        services.remote_job_create(render=render, account=account)
        claim(render)
        services.provider_render_start(render_id=render.pk)  # what the render worker does after its claim
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Render.objects.get(pk=render.pk).status == Render.Status.RUNNING:
            time.sleep(0.1)
    render = Render.objects.get(pk=render.pk)
    assert render.status == Render.Status.SUCCEEDED, render.error
    assert submit.call_count == 1 and polls.call_count == 3
    assert render.video.read() == (FIXTURES / "clip.mp4").read_bytes()
    assert KEY not in caplog.text


def _newportai(mock, cdn):
    submit = mock.post("https://api.newportai.com/api/async/talking_face").mock(
        return_value=httpx.Response(200, json={"code": 0, "data": {"taskId": "w-2"}}))
    mock.post("https://api.newportai.com/api/getAsyncResult").mock(side_effect=[
        httpx.Response(200, json={"code": 0, "data": {"task": {"status": 2}}}),
        httpx.Response(200, json={"code": 0, "data": {"task": {"status": 3},
                                                      "videos": [{"videoUrl": cdn.url("/result.mp4")}]}}),
    ])
    return submit


def _tencent(mock, cdn):
    def ok(payload):
        return httpx.Response(200, json={"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": payload})

    base = "https://gw-sg.tvs.qq.com/v2/ivh/videomaker/broadcastservice"
    submit = mock.post(f"{base}/videomakenotrain").mock(return_value=ok({"TaskId": "tc-w-1"}))
    mock.post(f"{base}/getprogress").mock(side_effect=[
        ok({"Status": "PROCESSING", "Progress": 40, "TaskId": "tc-w-1"}),
        ok({"Status": "SUCCESS", "MediaUrl": cdn.url("/result.mp4"), "TaskId": "tc-w-1", "Progress": 100}),
    ])
    return submit


PROVIDERS = {
    "newportai": ({"api_key": KEY}, _newportai),
    "tencent": ({"appkey": "tc-appkey-1234", "access_token": KEY}, _tencent),
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_render_queued_like_any_other_goes_to_its_provider_through_the_workers(
        embedded_worker, settings, caplog, provider):
    """The whole path: render_create with a provider → the render worker's render_run hands it
    to the provider → polls on the remote queue → the result stored → SUCCEEDED."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from renders.services import ProviderChoice, render_create
    from tests import media_cache

    settings.PUBLIC_BASE_URL = PUBLIC
    settings.NETGUARD_ALLOW_PRIVATE = True
    settings.PROVIDER_POLL_FIRST_SECONDS = 0.2
    settings.PROVIDER_PROBE_URLS = False
    alice = user_create(username="alice", password="correct horse battery")
    avatar = ready_avatar(team=alice.teams.get(), user=alice, kind="video")
    avatar.width, avatar.height = 1280, 720  # within every provider's size rules
    avatar.save()
    credentials, responses = PROVIDERS[provider]
    account = services.provider_account_create(team=avatar.team, user=alice, provider=provider, label="Ours",
                                               credentials=credentials)
    voice = SimpleUploadedFile("voice.wav", media_cache.audio(3.0, "wav").read_bytes(), content_type="audio/wav")
    with respx.mock(assert_all_called=False) as mock, provider_cdn() as cdn:
        mock.route(host="127.0.0.1").pass_through()
        submit = responses(mock, cdn)
        render = render_create(team=avatar.team, user=alice, avatar=avatar, title="Via a provider",
                               driver=Render.Driver.AUDIO, audio=voice, provider=ProviderChoice(account=account))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Render.objects.get(pk=render.pk).status in (
            Render.Status.QUEUED, Render.Status.RUNNING
        ):
            time.sleep(0.1)
    render = Render.objects.get(pk=render.pk)
    assert render.status == Render.Status.SUCCEEDED, render.error
    assert submit.call_count == 1
    assert render.video.read() == (FIXTURES / "clip.mp4").read_bytes()
    assert KEY not in caplog.text
