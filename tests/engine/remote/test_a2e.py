import json

import httpx
import pytest
import respx

from engine.errors import InputRejected
from engine.remote import (
    A2EEngine,
    AvatarRequest,
    Media,
    ProviderAuthError,
    ProviderInputRejected,
    ProviderQuotaError,
    ProviderTask,
    RenderRequest,
    TransientProviderError,
)

KEY = "a2e-token-SECRET-0001"
BASE = "https://video.a2e.ai"
VIDEO = Media(url="https://media.example.com/s/twin.mp4?sig=1", format="mp4", duration=42.0, width=1920,
              height=1080)
IMAGE = Media(url="https://media.example.com/s/face.png?sig=2", format="png", size_bytes=2 << 20, width=1024,
              height=1024)
AUDIO = Media(url="https://media.example.com/s/voice.wav?sig=3", format="wav", duration=5.0)


@pytest.fixture
def a2e():
    with A2EEngine({"api_key": KEY}, probe_urls=False) as engine:
        yield engine


def ok(data):
    return httpx.Response(200, json={"code": 0, "data": data})


def sent(route):
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["x-lang"] == "en-US"
    if request.content:
        assert request.method == "POST" and request.headers["Content-Type"] == "application/json"
    return json.loads(request.content) if request.content else None


TWIN_RECORD = {  # the document's response sample, whole
    "name": "test", "gender": "female", "image_url": "",
    "video_url": "https://d1tzkvq5ukphug.cloudfront.net/adam2eve/stable/video_twin/2112ce30-ae9a-450f-abf4-6fbf8cab546e.mp4",
    "current_status": "initialized", "wl_model": "V3", "close_mouth_path": "", "task_id": "", "task_status": "",
    "video_backgroud_image": "", "video_backgroud_color": "rgb(61,165,82)", "image_result_url": "", "sent_time": None,
    "preview_result_url": "", "version": 1, "priority": 1, "isSilent": False, "hasVoiceClone": False,
    "hasVideoClone": False, "deleted": False, "_id": "66cc39e1b0e0680cadd2ca6e", "user_id": "637498294abbb165572d5dbe",
    "createdAt": "2024-08-26T08:16:33.845Z", "updatedAt": "2024-08-26T08:16:33.845Z", "__v": 0,
}


@respx.mock
def test_it_starts_training_from_a_video_with_the_documented_fields(a2e):
    route = respx.post(f"{BASE}/api/v1/userVideoTwin/startTraining").mock(return_value=ok(TWIN_RECORD))
    sample_url = "http://XXXXX/cache/videoplayback%20%2816%29.mp4"  # encoded spaces are fine, literal ones not
    task = a2e.start_avatar(AvatarRequest(name="dubbing demo", source=Media(url=sample_url, duration=42.0),
                                          gender="female", background_color=(61, 165, 82)))
    assert route.calls.last.request.method == "POST"
    assert sent(route) == {  # the document's request sample
        "name": "dubbing demo", "gender": "female", "video_url": sample_url, "video_backgroud_color": "rgb(61,165,82)"}
    assert task.task_id == "66cc39e1b0e0680cadd2ca6e"
    assert task.kind == "avatar" and task.data["kind"] == "video"


@respx.mock
def test_it_starts_training_from_an_image_with_short_edge_background_image_and_skip_preview(a2e):
    route = respx.post(f"{BASE}/api/v1/userVideoTwin/startTraining").mock(return_value=ok(TWIN_RECORD))
    a2e.start_avatar(AvatarRequest(
        name="Ada", source=IMAGE, kind="photo", gender="male",
        background_image_url="https://media.example.com/s/bg.jpg",
        options={"image_short_edge": 720, "skip_preview": True, "language": "zh-CN"}))
    assert route.calls.last.request.headers["x-lang"] == "zh-CN"
    assert json.loads(route.calls.last.request.content) == {
        "name": "Ada", "gender": "male", "image_url": IMAGE.url, "image_short_edge": 720,
        "video_backgroud_image": "https://media.example.com/s/bg.jpg", "skipPreview": True}


@respx.mock
def test_training_polls_to_an_anchor_id(a2e):
    status_route = respx.get(f"{BASE}/api/v1/userVideoTwin/twin1").mock(side_effect=[
        ok({**TWIN_RECORD, "_id": "twin1", "current_status": "initialized"}),
        ok({**TWIN_RECORD, "_id": "twin1", "current_status": "processing"}),
        ok({**TWIN_RECORD, "_id": "twin1", "current_status": "completed",
            "preview_result_url": "https://cdn.a2e/preview.mp4"}),
    ])
    anchors = respx.get(f"{BASE}/api/v1/anchor/character_list").mock(
        return_value=ok([{"_id": "anchor-77", "user_video_twin_id": "twin1"}]))
    task = ProviderTask("a2e", "avatar", "twin1", {"kind": "video"})
    states = [a2e.avatar_status(task) for _ in range(3)]
    assert [s.state for s in states] == ["queued", "running", "succeeded"]
    assert states[-1].avatar_id == "anchor-77"
    assert states[-1].video_url == "https://cdn.a2e/preview.mp4"
    assert anchors.calls.last.request.url.params["user_video_twin_id"] == "twin1"
    assert status_route.call_count == 3


@respx.mock
def test_training_failure_keeps_the_reason(a2e):
    respx.get(f"{BASE}/api/v1/userVideoTwin/twin1").mock(
        return_value=ok({"_id": "twin1", "current_status": "failed", "failed_message": "multiple faces"}))
    status = a2e.avatar_status(ProviderTask("a2e", "avatar", "twin1"))
    assert status.state == "failed" and "multiple faces" in status.error


@respx.mock
def test_continue_training_posts_the_twin_id(a2e):
    route = respx.post(f"{BASE}/api/v1/userVideoTwin/continueTraining").mock(return_value=ok({}))
    a2e.continue_training(ProviderTask("a2e", "avatar", "twin1", {"kind": "video"}))
    assert sent(route) == {"_id": "twin1"}
    with pytest.raises(InputRejected, match="video avatars only"):
        a2e.continue_training(ProviderTask("a2e", "avatar", "twin1", {"kind": "photo"}))


@respx.mock
def test_a_render_from_audio_generates_with_the_anchor(a2e):
    route = respx.post(f"{BASE}/api/v1/video/generate").mock(return_value=ok({"_id": "vid-1"}))
    task = a2e.start_render(RenderRequest(avatar_id="anchor-77", audio=AUDIO, title="Welcome"))
    assert sent(route) == {"title": "Welcome", "anchor_id": "anchor-77", "anchor_type": 1, "audioSrc": AUDIO.url}
    assert task.task_id == "vid-1"


@respx.mock
def test_a_render_from_text_goes_through_a2e_tts_first(a2e):
    tts = respx.post(f"{BASE}/api/v1/video/send_tts").mock(return_value=ok("https://cdn.a2e/tts.mp3"))
    generate = respx.post(f"{BASE}/api/v1/video/generate").mock(return_value=ok({"_id": "vid-2"}))
    a2e.start_render(RenderRequest(avatar_id="anchor-77", text="Hello from the studio.", voice="tts-en-1",
                                   speed=1.2))
    assert sent(tts) == {"msg": "Hello from the studio.", "tts_id": "tts-en-1", "speechRate": 1.2}
    assert sent(generate)["audioSrc"] == "https://cdn.a2e/tts.mp3"


@respx.mock
def test_render_status_polls_to_success_and_to_failure(a2e):
    route = respx.post(f"{BASE}/api/v1/video/awsResult").mock(side_effect=[
        ok([{"_id": "vid-1", "status": "sent"}]),
        ok([{"_id": "vid-1", "status": "processing", "process": 40}]),
        ok([{"_id": "vid-1", "status": "success", "result": "https://cdn.a2e/out.mp4"}]),
        ok([{"_id": "vid-1", "status": "failed", "failed_message": "audio too short"}]),
    ])
    task = ProviderTask("a2e", "render", "vid-1")
    queued, running, done, failed = (a2e.render_status(task) for _ in range(4))
    assert sent(route) == {"_id": "vid-1"}
    assert queued.state == "queued"
    assert running.state == "running" and running.progress == pytest.approx(0.4)
    assert done.state == "succeeded" and done.video_url == "https://cdn.a2e/out.mp4"
    assert failed.state == "failed" and "audio too short" in failed.error and failed.raw_status == "failed"


@respx.mock
@pytest.mark.parametrize("msg, error", [
    ("token is invalid", ProviderAuthError),
    ("Not enough diamonds", ProviderQuotaError),
    ("video_url is not accessible", ProviderInputRejected),
])
def test_error_codes_become_sentences(a2e, msg, error):
    respx.post(f"{BASE}/api/v1/userVideoTwin/startTraining").mock(
        return_value=httpx.Response(200, json={"code": 1, "msg": msg}))
    with pytest.raises(error) as caught:
        a2e.start_avatar(AvatarRequest(name="n", source=VIDEO))
    assert msg in str(caught.value)


@respx.mock
def test_a_503_is_transient(a2e):
    respx.post(f"{BASE}/api/v1/video/awsResult").mock(return_value=httpx.Response(503, headers={"Retry-After": "30"}))
    with pytest.raises(TransientProviderError) as caught:
        a2e.render_status(ProviderTask("a2e", "render", "v"))
    assert caught.value.retry_after == 30


@pytest.mark.parametrize("request_, field, words", [
    (AvatarRequest(name="n", source=Media(url=VIDEO.url, format="mp4", duration=8.0)), "source",
     "between 10.0 s and 5.0 minutes"),
    (AvatarRequest(name="n", source=Media(url=VIDEO.url, format="mp4", duration=301.0)), "source", "5.0 minutes"),
    (AvatarRequest(name="n", source=Media(url=VIDEO.url, format="webm")), "source", "MP4 or MOV"),
    (AvatarRequest(name="n", source=Media(url=VIDEO.url, format="mp4", width=4096, height=4096)), "source", "4K"),
    (AvatarRequest(name="n", kind="photo", source=Media(url=IMAGE.url, format="png", size_bytes=11 << 20)),
     "source", "up to 10 MB"),
    (AvatarRequest(name="n", kind="photo", source=Media(url=IMAGE.url, format="png", width=4001, height=3000)),
     "source", "4000 pixels"),
    (AvatarRequest(name="n", source=Media(url="https://m.example.com/my clip.mp4", format="mp4")), "source",
     "spaces"),
    (AvatarRequest(name="n", source=VIDEO, background_color=(1, 2, 3), background_image_url="https://m/b.jpg"),
     "background", "not both"),
    (AvatarRequest(name="n", source=VIDEO, gender="other"), "gender", "female or male"),
    (AvatarRequest(name="n", source=VIDEO, options={"image_short_edge": 640}), "image_short_edge",
     "image avatars only"),
])
def test_training_input_is_refused_before_anything_is_sent(a2e, request_, field, words):
    with respx.mock, pytest.raises(InputRejected) as caught:
        a2e.start_avatar(request_)
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize("request_, field", [
    (RenderRequest(avatar_source=VIDEO, audio=AUDIO), "avatar"),
    (RenderRequest(avatar_id="a", text="Hi there"), "voice"),
    (RenderRequest(avatar_id="a", audio=AUDIO, captions=True), "captions"),
    (RenderRequest(avatar_id="a", audio=AUDIO, width=720, height=1280), "size"),
    (RenderRequest(avatar_id="a", audio=AUDIO, loop_mode="circle"), "loop_mode"),
])
def test_render_input_is_refused_before_anything_is_sent(a2e, request_, field):
    with respx.mock, pytest.raises(InputRejected) as caught:
        a2e.start_render(request_)
    assert caught.value.field == field


def test_urls_are_fetched_the_way_a2e_will_before_training(local_server):
    """A2E's URL rules against a real server: the type comes from Content-Type, redirects are refused."""
    local_server.routes[("GET", "/good.mp4")] = lambda h, b: (206, {"Content-Type": "video/mp4"}, b"\x00")
    local_server.routes[("GET", "/octet.mp4")] = lambda h, b: (200, {"Content-Type": "application/octet-stream"},
                                                                b"\x00")
    local_server.routes[("GET", "/moved.mp4")] = lambda h, b: (301, {"Location": "/good.mp4"}, b"")
    local_server.routes[("POST", "/api/v1/userVideoTwin/startTraining")] = lambda h, b: (
        200, {"Content-Type": "application/json"}, json.dumps({"code": 0, "data": {"_id": "twin9"}}).encode())
    engine = A2EEngine({"api_key": KEY}, base_url=local_server.url)

    def train(path):
        return engine.start_avatar(AvatarRequest(name="n", source=Media(url=local_server.url + path, format="mp4")))

    with pytest.raises(InputRejected) as caught:
        train("/octet.mp4")
    assert caught.value.code == "provider_url_mime" and "application/octet-stream" in str(caught.value)
    with pytest.raises(InputRejected) as caught:
        train("/moved.mp4")
    assert caught.value.code == "provider_url_redirect" and "HTTP 301" in str(caught.value)
    with pytest.raises(InputRejected) as caught:
        train("/missing.mp4")
    assert caught.value.code == "provider_url_status"
    assert not [r for r in local_server.requests if r["method"] == "POST"]

    assert train("/good.mp4").task_id == "twin9"
    probe = [r for r in local_server.requests if r["path"] == "/good.mp4"][-1]
    assert probe["headers"]["Range"] == "bytes=0-0"
    assert "Authorization" not in probe["headers"]  # the key goes to A2E only, never to media hosts
    posted = [r for r in local_server.requests if r["method"] == "POST"][-1]
    assert posted["headers"]["Authorization"] == f"Bearer {KEY}"


def test_check_avatar_stays_off_the_network_even_when_probing():
    engine = A2EEngine({"api_key": KEY})  # probe_urls on
    with respx.mock:  # no routes: any request would raise
        engine.check_avatar(AvatarRequest(name="n", source=VIDEO))


def test_an_unreachable_media_url_is_refused_before_training():
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine = A2EEngine({"api_key": KEY}, base_url="http://127.0.0.1:9")
    with pytest.raises(InputRejected) as caught:
        engine.start_avatar(AvatarRequest(name="n", source=Media(url=f"http://127.0.0.1:{port}/a.mp4", format="mp4")))
    assert caught.value.code == "provider_url_unreachable" and "PUBLIC_BASE_URL" in str(caught.value)
