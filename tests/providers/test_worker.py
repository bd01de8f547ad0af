"""A provider render polled by a real Celery worker on the `remote` queue, over a real broker."""

import json
import logging
import time

import httpx
import pytest
import respx

from providers import services
from providers.models import RemoteJob
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


def _a2e(mock, cdn):
    def ok(data):
        return httpx.Response(200, json={"code": 0, "data": data})

    base = "https://video.a2e.ai/api/v1"
    # A2E renders a trained avatar only: the worker trains it first, then sends the render.
    mock.post(f"{base}/userVideoTwin/startTraining").mock(return_value=ok({"_id": "twin-w", "current_status": "sent"}))
    mock.get(f"{base}/userVideoTwin/twin-w").mock(side_effect=[
        ok({"_id": "twin-w", "current_status": "sent"}),
        ok({"_id": "twin-w", "current_status": "completed"}),
    ])
    mock.get(f"{base}/anchor/character_list").mock(return_value=ok([{"_id": "anchor-w"}]))
    submit = mock.post(f"{base}/video/generate").mock(return_value=ok({"_id": "a2e-w-1"}))
    mock.post(f"{base}/video/awsResult").mock(side_effect=[
        ok([{"_id": "a2e-w-1", "status": "process", "process": 50}]),
        ok([{"_id": "a2e-w-1", "status": "success", "result": cdn.url("/result.mp4")}]),
    ])
    return submit


def _topview(mock, cdn):
    base = "https://api.topview.ai/v1"
    files = iter(["tv-file-video", "tv-file-audio"])
    mock.get(f"{base}/upload/credential").mock(side_effect=lambda request: httpx.Response(200, json={
        "code": "200", "result": {"uploadUrl": "https://bucket.topview.example/up?sig=1", "fileId": next(files)}}))
    mock.put("https://bucket.topview.example/up").mock(return_value=httpx.Response(200))
    submit = mock.post(f"{base}/video_avatar/task/submit").mock(
        return_value=httpx.Response(200, json={"code": "200", "result": {"taskId": "tv-w-1"}}))
    mock.get(f"{base}/video_avatar/task/query").mock(side_effect=[
        httpx.Response(200, json={"code": "200", "result": {"status": "processing"}}),
        httpx.Response(200, json={"code": "200", "result": {"status": "success", "finishedVideoUrl": cdn.url(
            "/result.mp4"), "coverUrl": cdn.url("/cover.jpg")}}),
    ])
    return submit


# What each provider's submit must carry when the render is driven by its uploaded voice track.
def _sent_a2e(body):
    assert body["anchor_id"] == "anchor-w" and body["audioSrc"].startswith(PUBLIC + "/provider-media/")


def _sent_newportai(body):
    assert body["srcVideoUrl"].startswith(PUBLIC + "/provider-media/") and body["audioUrl"].endswith("/voice.wav")


def _sent_tencent(body):
    assert body["Payload"]["DriverType"] == "OriginalVoice" and body["Payload"]["InputAudioUrl"].endswith("/voice.wav")


def _sent_topview(body):
    assert (body["videoFileId"], body["audioFileId"]) == ("tv-file-video", "tv-file-audio")


PROVIDERS = {
    "a2e": ({"api_key": KEY}, _a2e, _sent_a2e, "a2e-w-1"),
    "newportai": ({"api_key": KEY}, _newportai, _sent_newportai, "w-2"),
    "tencent": ({"appkey": "tc-appkey-1234", "access_token": KEY}, _tencent, _sent_tencent, "tc-w-1"),
    "topview": ({"api_key": KEY, "uid": "tv-uid-1"}, _topview, _sent_topview, "tv-w-1"),
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_render_queued_like_any_other_goes_to_its_provider_through_the_workers(
        embedded_worker, settings, caplog, client, provider):
    """The whole path: render_create with a provider → the render worker's render_run hands it
    to the provider → polls on the remote queue → the result stored → SUCCEEDED; the key shows
    up in no log line, page or admin screen on the way."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from renders.services import ProviderChoice, render_create
    from tests import media_cache

    settings.PUBLIC_BASE_URL = PUBLIC
    settings.NETGUARD_ALLOW_PRIVATE = True
    settings.PROVIDER_POLL_FIRST_SECONDS = 0.2
    settings.PROVIDER_POLL_MAX_SECONDS = 1  # A2E's training is polled at the cap
    settings.PROVIDER_PROBE_URLS = False
    caplog.set_level(logging.DEBUG)
    alice = user_create(username="alice", password="correct horse battery")
    avatar = ready_avatar(team=alice.teams.get(), user=alice, kind="video")
    avatar.width, avatar.height = 1280, 720  # within every provider's size rules
    avatar.save()
    credentials, responses, check_sent, task_id = PROVIDERS[provider]
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
    check_sent(json.loads(submit.calls.last.request.content))
    assert render.video.read() == (FIXTURES / "clip.mp4").read_bytes()
    assert render.poster and render.duration > 0
    assert RemoteJob.objects.get(render=render).task_id == task_id
    assert KEY not in caplog.text and "signature=" not in caplog.text  # nor Tencent's signed URLs

    client.force_login(alice)
    page = client.get(f"/renders/{render.pk}/")
    assert page.status_code == 200 and b"Via a provider" in page.content
    assert f"{account.provider_label} · Ours".encode() in page.content  # the status page names the engine
    admin = user_create(username="root", password="correct horse battery")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    job = RemoteJob.objects.get(render=render)
    screens = [page] + [client.get(url) for url in (
        f"/admin/renders/render/{render.pk}/change/", "/admin/providers/remotejob/",
        f"/admin/providers/remotejob/{job.pk}/change/", f"/admin/providers/provideraccount/{account.pk}/change/")]
    assert all(screen.status_code == 200 for screen in screens)
    assert task_id.encode() in screens[1].content  # the admin shows the provider's task beside ours
    for screen in screens:
        for secret in credentials.values():
            if secret != "tv-uid-1":  # TopView's user id is an identifier, not a secret
                assert secret.encode() not in screen.content
