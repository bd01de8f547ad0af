"""A render on a provider through the studio's services, with respx standing in for the provider
and a local HTTP server for its result host: start → poll → result copied → render succeeded."""

import json
import logging
from datetime import timedelta

import httpx
import pytest
import respx
from django.utils import timezone

from engine.errors import InputRejected
from providers import services
from providers.models import ProviderAvatar, RemoteJob
from renders.models import Render, RenderEvent
from studio.jobs import job_update
from studio.services import user_create
from tests.factories import FIXTURES, ready_avatar
from tests.providers.helpers import PUBLIC, claim, poll, provider_cdn, queued_render, serve_public_media, start

NP_KEY = "np-live-SECRET-key-0123456789"
A2E_KEY = "a2e-live-SECRET-key-9876543210"
TC = {"appkey": "tc-appkey-1234", "access_token": "tc-live-SECRET-token-555"}
NP_SUBMIT = "https://api.newportai.com/api/async/talking_face"
NP_POLL = "https://api.newportai.com/api/getAsyncResult"
A2E = "https://video.a2e.ai/api/v1"
TC_SUBMIT = "https://gw-sg.tvs.qq.com/v2/ivh/videomaker/broadcastservice/videomakenotrain"
TC_POLL = "https://gw-sg.tvs.qq.com/v2/ivh/videomaker/broadcastservice/getprogress"


def np_ok(data):
    return httpx.Response(200, json={"code": 0, "message": "success", "data": data})


def a2e_ok(data):
    return httpx.Response(200, json={"code": 0, "data": data})


def tc_ok(payload):
    return httpx.Response(200, json={"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": payload})


@pytest.fixture
def world(db, settings, caplog):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.NETGUARD_ALLOW_PRIVATE = True  # the provider's result host is a local server in these tests
    caplog.set_level(logging.DEBUG)
    alice = user_create(username="alice", password="correct horse battery")
    team = alice.teams.get()

    class World:
        pass

    w = World()
    w.alice, w.team = alice, team
    w.video_avatar = ready_avatar(team=team, user=alice, kind="video", name="Presenter")
    w.photo_avatar = ready_avatar(team=team, user=alice, kind="photo", name="Headshot")
    w.newport = services.provider_account_create(team=team, user=alice, provider="newportai", label="NP",
                                                 credentials={"api_key": NP_KEY})
    w.a2e = services.provider_account_create(team=team, user=alice, provider="a2e", label="A2E",
                                             credentials={"api_key": A2E_KEY})
    w.tencent = services.provider_account_create(team=team, user=alice, provider="tencent", label="TC",
                                                 credentials=TC)
    w.caplog = caplog
    yield w
    for secret in (NP_KEY, A2E_KEY, *TC.values()):
        assert secret not in caplog.text


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        yield router


def reloaded(render) -> Render:
    return Render.objects.get(pk=render.pk)


def events(render) -> list[str]:
    return list(RenderEvent.objects.filter(render=render).values_list("kind", flat=True))


def test_a_render_on_newportai_end_to_end(world, mock):
    submit = mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-task-1"}))
    with provider_cdn() as cdn:
        mock.post(NP_POLL).mock(side_effect=[
            np_ok({"task": {"taskId": "np-task-1", "status": 2}}),
            np_ok({"task": {"taskId": "np-task-1", "status": 3}, "videos": [{"videoUrl": cdn.url("/result.mp4")}]}),
        ])
        render = queued_render(avatar=world.video_avatar, user=world.alice)
        job = start(render, world.newport)
        assert job.state == RemoteJob.State.POLLING and job.task_id == "np-task-1"
        sent = json.loads(submit.calls.last.request.content)
        assert sent["srcVideoUrl"].startswith(PUBLIC + "/provider-media/") and sent["srcVideoUrl"].endswith("/media.mp4")
        assert sent["audioUrl"].endswith("/voice.mp3")
        assert reloaded(render).stage == "queued at NewportAI"

        job = poll(job)
        assert reloaded(render).stage == "rendering at NewportAI" and job.raw_status == "2"
        job = poll(job)

    render = reloaded(render)
    assert render.status == Render.Status.SUCCEEDED, render.error
    assert job.state == RemoteJob.State.SUCCEEDED
    assert render.video.name == f"{render.key_prefix}video.mp4"
    assert render.video.read() == (FIXTURES / "clip.mp4").read_bytes()
    assert render.size_bytes == (FIXTURES / "clip.mp4").stat().st_size
    assert render.duration > 0 and render.width and render.height
    assert render.poster.name.endswith("poster.jpg") and render.poster.size > 0
    assert render.progress == 100
    assert events(render)[-2:] == ["submitted", "succeeded"]
    assert submit.call_count == 1


def test_a_resumed_worker_polls_the_saved_task_instead_of_sending_a_second_one(world, mock):
    submit = mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-task-7"}))
    with provider_cdn() as cdn:
        polls = mock.post(NP_POLL).mock(return_value=np_ok(
            {"task": {"taskId": "np-task-7", "status": 3}, "videos": [{"videoUrl": cdn.url("/result.mp4")}]}))
        render = queued_render(avatar=world.video_avatar, user=world.alice)
        job = start(render, world.newport)
        # The worker dies; the sweep hands the render back to the queue and another worker claims it.
        job_update(Render, pk=render.pk, from_statuses=[Render.Status.RUNNING], status=Render.Status.QUEUED)
        claim(render)
        services.provider_render_start(render_id=render.pk)
    assert submit.call_count == 1
    assert json.loads(polls.calls.last.request.content) == {"taskId": "np-task-7"}
    assert reloaded(render).status == Render.Status.SUCCEEDED
    assert "resumed" in events(render)


def test_a_poll_from_the_previous_claim_does_nothing(world, mock):
    mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-task-8"}))
    polls = mock.post(NP_POLL).mock(return_value=np_ok({"task": {"taskId": "np-task-8", "status": 2}}))
    render = queued_render(avatar=world.video_avatar, user=world.alice)
    job = start(render, world.newport)
    old_token = job.poll_token
    services.provider_poll(job_id=job.pk, token="an-older-schedule")
    assert polls.call_count == 0
    assert RemoteJob.objects.get(pk=job.pk).poll_token == old_token


def test_what_a_provider_cannot_take_fails_the_render_before_anything_is_sent(world, mock):
    render = queued_render(avatar=world.photo_avatar, user=world.alice)
    job = start(render, world.newport)
    render = reloaded(render)
    assert render.status == Render.Status.FAILED
    assert render.error == "NewportAI does not render from a photo."
    assert job.state == RemoteJob.State.FAILED and not job.task_id
    assert not mock.calls


def test_a_provider_rule_is_refused_at_form_time_with_the_rule_in_the_sentence(world):
    render = Render(team=world.team, avatar=world.video_avatar, title="t", driver=Render.Driver.TEXT,
                    script="a" * 2001)
    with pytest.raises(InputRejected, match="between 360 and 4096 pixels; this one is 96×96") as caught:
        services.provider_render_check(render=render, account=world.tencent, voice="female_1")
    assert caught.value.field == "avatar"
    world.video_avatar.width, world.video_avatar.height = 1280, 720
    with pytest.raises(InputRejected, match="between 4 and 2,000 characters; this one has 2,001"):
        services.provider_render_check(render=render, account=world.tencent, voice="female_1")


def test_burned_in_captions_stay_with_the_built_in_engine(world):
    render = Render(team=world.team, avatar=world.video_avatar, title="t", driver=Render.Driver.AUDIO,
                    audio_duration=3.0, burn_captions=True)
    with pytest.raises(InputRejected, match="built-in engine only; turn them off to render on NewportAI") as caught:
        services.provider_render_check(render=render, account=world.newport)
    assert caught.value.field == "burn_captions"


def test_a_provider_failure_fails_the_render_with_the_providers_sentence(world, mock):
    mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-task-2"}))
    mock.post(NP_POLL).mock(return_value=np_ok({"task": {"taskId": "np-task-2", "status": 4,
                                                          "reason": "no face found in the video"}}))
    render = queued_render(avatar=world.video_avatar, user=world.alice)
    poll(start(render, world.newport))
    render = reloaded(render)
    assert render.status == Render.Status.FAILED
    assert render.error == 'NewportAI could not make the video. It said: "no face found in the video".'


def test_a_refused_key_fails_with_a_sentence_for_the_owner(world, mock):
    mock.post(NP_SUBMIT).mock(return_value=httpx.Response(401, json={"code": 401, "message": f"bad key {NP_KEY}"}))
    render = queued_render(avatar=world.video_avatar, user=world.alice)
    start(render, world.newport)
    render = reloaded(render)
    assert render.status == Render.Status.FAILED
    assert render.error.startswith("The NewportAI key was refused; the team owner should check")
    assert NP_KEY not in render.error


def test_a_provider_that_stays_down_is_retried_then_failed_at_the_deadline_with_the_reason(world, mock):
    mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-task-3"}))
    mock.post(NP_POLL).mock(return_value=httpx.Response(503, headers={"Retry-After": "20"}))
    render = queued_render(avatar=world.video_avatar, user=world.alice)
    job = poll(start(render, world.newport))
    assert reloaded(render).status == Render.Status.RUNNING
    assert job.transient_errors == 1 and "provider_retry" in events(render)
    assert job.next_poll_at >= timezone.now() + timedelta(seconds=19)
    RemoteJob.objects.filter(pk=job.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    poll(job)
    render = reloaded(render)
    assert render.status == Render.Status.FAILED
    assert render.error.startswith("NewportAI did not finish the video in the time the studio waits")
    assert "HTTP 503" in render.error


def test_a_cancelled_render_stops_polling(world, mock):
    mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-task-4"}))
    polls = mock.post(NP_POLL).mock(return_value=np_ok({"task": {"taskId": "np-task-4", "status": 2}}))
    render = queued_render(avatar=world.video_avatar, user=world.alice)
    job = start(render, world.newport)
    Render.objects.filter(pk=render.pk).update(status=Render.Status.CANCELLED)
    job = poll(job)
    assert polls.call_count == 0 and job.state == RemoteJob.State.ABANDONED


def test_a2e_trains_the_avatar_once_and_a_second_render_reuses_it(world, mock, settings):
    settings.PROVIDER_PROBE_URLS = True  # A2E's first-byte check goes to our real signed URLs
    ours = mock.route(host="studio.example.com").mock(side_effect=serve_public_media)
    training = mock.post(f"{A2E}/userVideoTwin/startTraining").mock(
        return_value=a2e_ok({"_id": "twin-1", "current_status": "initialized"}))
    mock.get(f"{A2E}/userVideoTwin/twin-1").mock(side_effect=[
        a2e_ok({"_id": "twin-1", "current_status": "sent"}),
        a2e_ok({"_id": "twin-1", "current_status": "completed"}),
    ])
    mock.get(f"{A2E}/anchor/character_list").mock(return_value=a2e_ok([{"_id": "anchor-9"}]))
    generate = mock.post(f"{A2E}/video/generate").mock(side_effect=[a2e_ok({"_id": "vid-1"}), a2e_ok({"_id": "vid-2"})])
    with provider_cdn() as cdn:
        mock.post(f"{A2E}/video/awsResult").mock(return_value=a2e_ok(
            [{"status": "success", "result": cdn.url("/result.mp4")}]))
        first = queued_render(avatar=world.video_avatar, user=world.alice, driver=Render.Driver.TEXT,
                              script="Hello there, this is a test.")
        job = start(first, world.a2e)
        assert job.state == RemoteJob.State.TRAINING
        body = json.loads(training.calls.last.request.content)
        assert body["name"] == "Presenter" and body["video_url"].endswith("/media.mp4")
        assert reloaded(first).stage == "training the avatar at A2E"
        probe = ours.calls.last
        assert probe.request.headers["Range"] == "bytes=0-0" and probe.request.url.path.endswith("/media.mp4")
        assert probe.response.status_code == 206 and probe.response.headers["Content-Type"] == "video/mp4"
        job = poll(job)  # still training
        assert job.state == RemoteJob.State.TRAINING
        job = poll(job)  # trained: the render is sent with the new avatar
        assert job.state == RemoteJob.State.POLLING
        sent = json.loads(generate.calls.last.request.content)
        assert sent["anchor_id"] == "anchor-9"
        # No A2E voice was chosen, so the built-in voice spoke the script and A2E got that audio.
        assert sent["audioSrc"].startswith(PUBLIC + "/provider-media/") and sent["audioSrc"].endswith(
            "/provider-speech.wav")
        poll(job)
        assert reloaded(first).status == Render.Status.SUCCEEDED

        second = queued_render(avatar=world.video_avatar, user=world.alice, title="Again")
        job = start(second, world.a2e)
        assert job.state == RemoteJob.State.POLLING
        poll(job)
    assert reloaded(second).status == Render.Status.SUCCEEDED
    assert training.call_count == 1
    assert json.loads(generate.calls.last.request.content)["anchor_id"] == "anchor-9"
    assert ProviderAvatar.objects.get(avatar=world.video_avatar, account=world.a2e).status == "ready"


def test_tencent_captions_are_copied_and_its_callback_only_hastens_polling(
        world, mock, client, django_capture_on_commit_callbacks, monkeypatch):
    world.video_avatar.width, world.video_avatar.height = 1280, 720
    world.video_avatar.save()
    enqueued = []
    monkeypatch.setattr(services, "enqueue_poll", lambda *args: enqueued.append(args))
    submit = mock.post(TC_SUBMIT).mock(return_value=tc_ok({"TaskId": "tc-task-1"}))
    with provider_cdn() as cdn:
        done = {"Status": "SUCCESS", "MediaUrl": cdn.url("/result.mp4"), "SubtitlesUrl": cdn.url("/captions.srt"),
                "TaskId": "tc-task-1", "Progress": 100}
        mock.post(TC_POLL).mock(return_value=tc_ok(done))
        render = queued_render(avatar=world.video_avatar, user=world.alice)
        with django_capture_on_commit_callbacks(execute=True):
            job = start(render, world.tencent)
        callback_url = json.loads(submit.calls.last.request.content)["Payload"]["CallbackUrl"]
        assert callback_url.startswith(PUBLIC + "/providers/callback/tencent/?ref=")
        path = callback_url.removeprefix(PUBLIC)
        body = json.dumps({"Payload": done}).encode()

        assert client.post(path.replace("sig=", "sig=0"), body, content_type="application/json").status_code == 403
        failed = json.dumps({"Payload": {**done, "Status": "FAIL", "FailMessage": "made up"}}).encode()
        assert client.post(path, failed, content_type="application/json").status_code == 204
        enqueued.clear()
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(path, body, content_type="application/json").status_code == 204
        assert [(job_id, countdown) for job_id, _, countdown in enqueued] == [(str(job.pk), 0)]
        assert reloaded(render).status == Render.Status.RUNNING  # the callback's word is not taken for it
        services.provider_poll(job_id=job.pk, token=enqueued[0][1])
    render = reloaded(render)
    assert render.status == Render.Status.SUCCEEDED
    assert render.captions_srt.read().decode() == (FIXTURES / "captions.srt").read_text()
    vtt = render.captions_vtt.read().decode()
    assert vtt.startswith("WEBVTT\n\n") and "-->" in vtt and "," not in vtt.split("-->")[0].splitlines()[-1]


def test_a_failed_render_moves_to_another_engine_and_back(world, mock):
    render = queued_render(avatar=world.photo_avatar, user=world.alice)
    start(render, world.newport)  # NewportAI refuses photos
    render = reloaded(render)
    with pytest.raises(InputRejected, match="does not render from a photo"):
        services.render_engine_change(render=render, account=world.newport)
    services.render_engine_change(render=render, account=None)
    assert not services.render_uses_provider(render.pk)
    services.render_engine_change(render=render, account=world.a2e)
    assert RemoteJob.objects.get(render=render).provider == "a2e"
    Render.objects.filter(pk=render.pk).update(status=Render.Status.RUNNING)
    with pytest.raises(InputRejected, match="Only a failed or cancelled render"):
        services.render_engine_change(render=reloaded(render), account=None)


def test_topview_gets_the_files_uploaded_and_its_saved_avatar_is_reused(world, mock):
    topview = services.provider_account_create(team=world.team, user=world.alice, provider="topview", label="TV",
                                               credentials={"api_key": "tv-live-SECRET-key-777", "uid": "u-1"})
    base = "https://api.topview.ai/v1"
    credential = mock.get(f"{base}/upload/credential").mock(return_value=httpx.Response(200, json={
        "code": "200", "result": {"uploadUrl": "https://bucket.topview.example/up?sig=1", "fileId": "file-1"}}))
    uploaded = mock.put("https://bucket.topview.example/up").mock(return_value=httpx.Response(200))
    submit = mock.post(f"{base}/video_avatar/task/submit").mock(side_effect=[
        httpx.Response(200, json={"code": "200", "result": {"taskId": "tv-1"}}),
        httpx.Response(200, json={"code": "200", "result": {"taskId": "tv-2"}}),
    ])
    with provider_cdn() as cdn:
        mock.get(f"{base}/video_avatar/task/query").mock(return_value=httpx.Response(200, json={
            "code": "200", "result": {"status": "success", "finishedVideoUrl": cdn.url("/result.mp4"),
                                      "coverUrl": cdn.url("/cover.jpg"), "aiAvatarId": "tv-avatar-5"}}))
        first = queued_render(avatar=world.photo_avatar, user=world.alice, driver=Render.Driver.TEXT,
                              script="Hello from TopView.")
        poll(start(first, topview, voice="voice-9", options={"save_as_private_avatar": True}))
        sent = json.loads(submit.calls.last.request.content)
        assert sent["avatarSourceFrom"] == 3 and sent["imageFileId"] == "file-1"
        assert sent["ttsText"] == "Hello from TopView." and sent["voiceoverId"] == "voice-9"
        assert uploaded.calls.last.request.content == (FIXTURES / "photo.png").read_bytes()
        first = reloaded(first)
        assert first.status == Render.Status.SUCCEEDED, first.error
        assert first.poster.read() != b""

        second = queued_render(avatar=world.photo_avatar, user=world.alice, driver=Render.Driver.TEXT,
                               script="And again.", title="Again")
        poll(start(second, topview, voice="voice-9"))
    sent = json.loads(submit.calls.last.request.content)
    assert sent["avatarSourceFrom"] == 2 and sent["aiAvatarId"] == "tv-avatar-5"
    assert credential.call_count == 1  # the second render uploaded nothing
    assert reloaded(second).status == Render.Status.SUCCEEDED
    assert "tv-live-SECRET-key-777" not in world.caplog.text


def _still_working(provider, mock, world):
    """Routes under which `provider` accepts the render and then never finishes it; its account."""
    if provider == "newportai":
        mock.post(NP_SUBMIT).mock(return_value=np_ok({"taskId": "np-slow"}))
        mock.post(NP_POLL).mock(return_value=np_ok({"task": {"taskId": "np-slow", "status": 2}}))
        return world.newport
    if provider == "tencent":
        mock.post(TC_SUBMIT).mock(return_value=tc_ok({"TaskId": "tc-slow"}))
        mock.post(TC_POLL).mock(return_value=tc_ok({"TaskId": "tc-slow", "Status": "MAKING", "Progress": 10}))
        return world.tencent
    if provider == "a2e":  # the avatar's training is what never ends
        mock.post(f"{A2E}/userVideoTwin/startTraining").mock(return_value=a2e_ok({"_id": "twin-slow"}))
        mock.get(f"{A2E}/userVideoTwin/twin-slow").mock(
            return_value=a2e_ok({"_id": "twin-slow", "current_status": "sent"}))
        return world.a2e
    base = "https://api.topview.ai/v1"
    mock.get(f"{base}/upload/credential").mock(return_value=httpx.Response(200, json={
        "code": "200", "result": {"uploadUrl": "https://bucket.topview.example/up?sig=1", "fileId": "file-1"}}))
    mock.put("https://bucket.topview.example/up").mock(return_value=httpx.Response(200))
    mock.post(f"{base}/video_avatar/task/submit").mock(
        return_value=httpx.Response(200, json={"code": "200", "result": {"taskId": "tv-slow"}}))
    mock.get(f"{base}/video_avatar/task/query").mock(
        return_value=httpx.Response(200, json={"code": "200", "result": {"status": "processing"}}))
    return services.provider_account_create(team=world.team, user=world.alice, provider="topview", label="TV",
                                            credentials={"api_key": "tv-live-SECRET-key-777", "uid": "u-1"})


@pytest.mark.parametrize(("provider", "label", "waited"), [
    ("a2e", "A2E", "train the avatar"),
    ("newportai", "NewportAI", "finish the video"),
    ("tencent", "Tencent", "finish the video"),
    ("topview", "TopView", "finish the video"),
])
def test_a_provider_that_never_finishes_is_given_up_at_the_deadline(world, mock, settings, provider, label, waited):
    settings.PROVIDER_PROBE_URLS = False
    world.video_avatar.width, world.video_avatar.height = 1280, 720  # within every provider's size rules
    world.video_avatar.save()
    account = _still_working(provider, mock, world)
    render = queued_render(avatar=world.video_avatar, user=world.alice)
    job = poll(start(render, account))
    assert reloaded(render).status == Render.Status.RUNNING and job.state in (RemoteJob.State.POLLING,
                                                                              RemoteJob.State.TRAINING)
    assert job.deadline is not None
    RemoteJob.objects.filter(pk=job.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    calls = len(mock.calls)
    job = poll(job)
    render = reloaded(render)
    assert render.status == Render.Status.FAILED and job.state == RemoteJob.State.FAILED
    assert render.error.startswith(f"{label} did not {waited} in the time the studio waits")
    assert len(mock.calls) == calls  # past the deadline the provider is not asked again
