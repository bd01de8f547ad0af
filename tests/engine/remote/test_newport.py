import json

import httpx
import pytest
import respx

from engine.errors import InputRejected
from engine.remote import (
    Media,
    NewportAIEngine,
    ProviderAuthError,
    ProviderInputRejected,
    ProviderQuotaError,
    ProviderTask,
    RenderRequest,
    TransientProviderError,
)

KEY = "np-secret-key-0123456789"
SUBMIT = "https://api.newportai.com/api/async/talking_face"
POLL = "https://api.newportai.com/api/getAsyncResult"
VIDEO = Media(url="https://media.example.com/s/avatar.mp4?sig=abc", format="mp4", duration=12.0)
AUDIO = Media(url="https://media.example.com/s/voice.mp3?sig=def", format="mp3", duration=4.0)


@pytest.fixture
def newport():
    with NewportAIEngine({"api_key": KEY}) as engine:
        yield engine


def request(**changes):
    fields = dict(avatar_source=VIDEO, audio=AUDIO)
    fields.update(changes)
    return RenderRequest(**fields)


def ok(data):
    return httpx.Response(200, json={"code": 0, "message": "success", "data": data})


@respx.mock
def test_it_submits_the_documented_talking_face_request(newport):
    route = respx.post(SUBMIT).mock(return_value=ok({"taskId": "b08337dc08d7428daa64b3d5e61b8350"}))
    task = newport.start_render(request(options={"enhance": True}))
    sent = route.calls.last.request
    assert sent.method == "POST"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {
        "srcVideoUrl": VIDEO.url,
        "audioUrl": AUDIO.url,
        "videoParams": {"video_width": 0, "video_height": 0, "video_enhance": 1},
    }
    assert task == ProviderTask("newportai", "render", "b08337dc08d7428daa64b3d5e61b8350")


@respx.mock
def test_it_asks_for_an_output_size_and_the_original_frame_rate(newport):
    route = respx.post(SUBMIT).mock(return_value=ok({"taskId": "t1"}))
    newport.start_render(request(width=720, height=1280, options={"original_fps": True}))
    params = json.loads(route.calls.last.request.content)["videoParams"]
    assert params == {"video_width": 720, "video_height": 1280, "video_enhance": 0, "fps": "original"}


@respx.mock
def test_it_polls_to_success(newport):
    route = respx.post(POLL).mock(side_effect=[
        ok({"task": {"taskId": "t1", "status": 1}}),
        ok({"task": {"taskId": "t1", "status": 2}}),
        ok({"task": {"taskId": "t1", "status": 3}, "videos": [{"videoUrl": "https://cdn.newport/r.mp4"}]}),
    ])
    task = ProviderTask("newportai", "render", "t1")
    states = [newport.render_status(task) for _ in range(3)]
    assert [s.state for s in states] == ["queued", "running", "succeeded"]
    assert states[-1].video_url == "https://cdn.newport/r.mp4"
    assert json.loads(route.calls.last.request.content) == {"taskId": "t1"}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"


@respx.mock
def test_it_polls_to_failure_with_the_providers_reason(newport):
    respx.post(POLL).mock(return_value=ok({"task": {"taskId": "t1", "status": 4, "reason": "no face detected"}}))
    status = newport.render_status(ProviderTask("newportai", "render", "t1"))
    assert status.state == "failed"
    assert "no face detected" in status.error
    assert status.raw_status == "4"


@respx.mock
@pytest.mark.parametrize("message, error", [
    ("invalid api key", ProviderAuthError),
    ("insufficient credits", ProviderQuotaError),
    ("srcVideoUrl is invalid", ProviderInputRejected),
])
def test_it_maps_error_codes_to_sentences(newport, message, error):
    respx.post(SUBMIT).mock(return_value=httpx.Response(200, json={"code": 1001, "message": message}))
    with pytest.raises(error) as caught:
        newport.start_render(request())
    assert message in str(caught.value)
    assert "NewportAI" in str(caught.value)


@respx.mock
def test_a_timeout_is_transient(newport):
    respx.post(POLL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientProviderError) as caught:
        newport.render_status(ProviderTask("newportai", "render", "t1"))
    assert caught.value.retry_after is None
    assert "did not answer in time" in str(caught.value)


@pytest.mark.parametrize("changes, field", [
    ({"audio": None, "text": "Hello there", "voice": "en"}, "script"),
    ({"avatar_source": Media(url="https://m.example.com/a.png", format="png"), "avatar_kind": "photo"}, "avatar"),
    ({"avatar_source": None, "avatar_id": "abc"}, "avatar"),
    ({"captions": True}, "captions"),
    ({"loop_mode": "forward"}, "loop_mode"),
    ({"disable_intervals": [(1, 2)]}, "disable_intervals"),
    ({"width": -5}, "size"),
    ({"audio": Media(url="https://m.example.com/my voice.mp3", format="mp3")}, "audio"),
    ({"options": {"fps": 30}}, "fps"),
])
def test_it_refuses_what_talking_face_cannot_take_before_sending(newport, changes, field):
    with respx.mock:  # any request would fail the test: nothing may be sent
        with pytest.raises(InputRejected) as caught:
            newport.start_render(request(**changes))
    assert caught.value.field == field
