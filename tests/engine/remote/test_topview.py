import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from engine.errors import InputRejected
from engine.remote import (
    Media,
    ProviderAuthError,
    ProviderInputRejected,
    ProviderQuotaError,
    ProviderTask,
    RenderRequest,
    TopViewEngine,
    TransientProviderError,
)
from engine.remote.base import AvatarRequest
from tests import media_cache

KEY, UID = "tv-api-key-SECRET-777", "uid-0042"
BASE = "https://api.topview.ai"
CREDENTIAL = f"{BASE}/v1/upload/credential"
SUBMIT = f"{BASE}/v1/video_avatar/task/submit"
QUERY = f"{BASE}/v1/video_avatar/task/query"


@pytest.fixture
def topview():
    with TopViewEngine({"api_key": KEY, "uid": UID}) as engine:
        yield engine


def ok(result):
    return httpx.Response(200, json={"code": "200", "message": "Success", "result": result})


def authorised(request):
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Topview-Uid"] == UID
    return request


@pytest.fixture
def small_files(tmp_path):
    video = tmp_path / "avatar.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    audio = tmp_path / "voice.wav"
    audio.write_bytes(b"RIFF" + bytes(1000))
    image = tmp_path / "face.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
    return {"video": Media(path=video, format="mp4"), "audio": Media(path=audio, format="wav"),
            "image": Media(path=image, format="png")}


@respx.mock
def test_it_uploads_then_submits_an_avatar_1_task(topview, small_files):
    credential = respx.get(CREDENTIAL).mock(side_effect=[
        ok({"uploadUrl": "https://s3.example.com/up/v?sig=1", "fileId": "file-video", "format": "mp4"}),
        ok({"uploadUrl": "https://s3.example.com/up/a?sig=2", "fileId": "file-audio", "format": "wav"}),
    ])
    uploads = respx.put(url__startswith="https://s3.example.com/up/").mock(return_value=httpx.Response(200))
    submit = respx.post(SUBMIT).mock(return_value=ok({"taskId": "task-1"}))
    task = topview.start_render(RenderRequest(avatar_source=small_files["video"], audio=small_files["audio"]))
    formats = [authorised(call.request).url.params["format"] for call in credential.calls]
    assert formats == ["mp4", "wav"]
    assert [call.request.content for call in uploads.calls] == [small_files["video"].path.read_bytes(),
                                                                small_files["audio"].path.read_bytes()]
    assert all("Authorization" not in call.request.headers for call in uploads.calls)
    assert json.loads(authorised(submit.calls.last.request).content) == {
        "avatarSourceFrom": 0, "videoFileId": "file-video", "audioSourceFrom": 0, "audioFileId": "file-audio",
        "modeType": 0}
    assert task == ProviderTask("topview", "render", "task-1", {"mode": "avatar1"})


@respx.mock
def test_an_image_goes_to_avatar_2_with_tts_and_captions(topview, small_files):
    respx.get(CREDENTIAL).mock(return_value=ok({"uploadUrl": "https://s3.example.com/up/i", "fileId": "file-img"}))
    respx.put("https://s3.example.com/up/i").mock(return_value=httpx.Response(200))
    submit = respx.post(SUBMIT).mock(return_value=ok({"taskId": "task-2"}))
    topview.start_render(RenderRequest(avatar_source=small_files["image"], avatar_kind="photo", text="Hello there",
                                       voice="voice-9", captions=True,
                                       options={"caption_id": "cap-3", "save_as_private_avatar": True}))
    assert json.loads(submit.calls.last.request.content) == {
        "avatarSourceFrom": 3, "imageFileId": "file-img", "audioSourceFrom": 1, "ttsText": "Hello there",
        "voiceoverId": "voice-9", "modeType": 1, "captionId": "cap-3", "isSave2CustomAiAvatar": True}


@respx.mock
@pytest.mark.parametrize("source, expected", [("public", 1), ("private", 2), (None, 2)])
def test_public_and_private_avatar_ids_need_no_upload(topview, small_files, source, expected):
    submit = respx.post(SUBMIT).mock(return_value=ok({"taskId": "task-3"}))
    respx.get(CREDENTIAL).mock(return_value=ok({"uploadUrl": "https://s3.example.com/up/a", "fileId": "file-a"}))
    respx.put("https://s3.example.com/up/a").mock(return_value=httpx.Response(200))
    options = {"avatar_source": source, "mode": "avatar2"} if source else {}
    topview.start_render(RenderRequest(avatar_id="avatar-55", audio=small_files["audio"], options=options))
    body = json.loads(submit.calls.last.request.content)
    assert body["avatarSourceFrom"] == expected and body["aiAvatarId"] == "avatar-55"
    assert body["modeType"] == (1 if source else 0)


@respx.mock
def test_query_polls_to_success_and_failure(topview):
    route = respx.get(QUERY).mock(side_effect=[
        ok({"taskId": "t", "status": "waiting"}),
        ok({"taskId": "t", "status": "running"}),
        ok({"taskId": "t", "status": "success", "finishedVideoUrl": "https://cdn.topview/r.mp4",
            "coverUrl": "https://cdn.topview/r.jpg", "aiAvatarId": "saved-1"}),
        ok({"taskId": "t", "status": "fail", "errorMsg": "audio could not be decoded"}),
    ])
    task = ProviderTask("topview", "render", "t")
    waiting, running, done, failed = (topview.render_status(task) for _ in range(4))
    assert authorised(route.calls.last.request).url.params["taskId"] == "t"
    assert (waiting.state, running.state) == ("queued", "running")
    assert done.state == "succeeded" and done.video_url == "https://cdn.topview/r.mp4"
    assert done.poster_url == "https://cdn.topview/r.jpg" and done.avatar_id == "saved-1"
    assert failed.state == "failed" and "audio could not be decoded" in failed.error


@respx.mock
@pytest.mark.parametrize("message, error", [
    ("Authorization invalid", ProviderAuthError),
    ("insufficient credit", ProviderQuotaError),
    ("ttsText too long", ProviderInputRejected),
])
def test_error_codes_become_sentences(topview, message, error):
    respx.post(SUBMIT).mock(return_value=httpx.Response(200, json={"code": "4001", "message": message}))
    with pytest.raises(error, match=message):
        topview.start_render(RenderRequest(avatar_id="a", text="Hello", voice="v"))


@respx.mock
def test_a_refused_upload_address_is_transient(topview, small_files):
    respx.get(CREDENTIAL).mock(return_value=ok({"uploadUrl": "https://s3.example.com/up/x", "fileId": "f"}))
    respx.put("https://s3.example.com/up/x").mock(return_value=httpx.Response(403, text="Request has expired"))
    with pytest.raises(TransientProviderError, match="upload address was refused"):
        topview.start_render(RenderRequest(avatar_source=small_files["video"], text="Hello", voice="v"))


def test_there_is_no_separate_avatar_step(topview, small_files):
    with pytest.raises(InputRejected, match="save_as_private_avatar"):
        topview.start_avatar(AvatarRequest(name="n", source=small_files["video"]))


@pytest.mark.parametrize("changes, field, words", [
    ({"avatar_kind": "photo", "options": {"mode": "avatar1"}}, "mode", "Avatar 1 does not take an image"),
    ({"captions": True}, "caption_id", "Caption List"),
    ({"audio": None, "text": "Hello"}, "voice", "voice"),
    ({"avatar_source": Media(url="https://m.example.com/a.mp4", format="mp4")}, "avatar", "by upload"),
    ({"avatar_source": Media(path="/nonexistent/avatar.mp4", format="mp4")}, "avatar", "missing"),
    ({"avatar_source": Media(path="/tmp/x.webm", format="webm")}, "avatar", "MP4 or MOV"),
    ({"audio": Media(path="/tmp/x.ogg", format="ogg")}, "audio", "MP3, WAV or M4A"),
    ({"options": {"avatar_source": "public"}}, "avatar_source", "not to uploaded footage"),
    ({"loop_mode": "forward"}, "loop_mode", "does not take a loop mode"),
    ({"width": 1080, "height": 1920}, "size", "output size"),
])
def test_input_is_refused_before_anything_is_sent(topview, small_files, changes, field, words):
    fields = dict(avatar_source=small_files["video"], audio=small_files["audio"])
    if changes.get("avatar_kind") == "photo":
        fields["avatar_source"] = small_files["image"]
    fields.update(changes)
    with respx.mock, pytest.raises(InputRejected) as caught:
        topview.start_render(RenderRequest(**fields))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_the_whole_flow_against_a_real_server(local_server, monkeypatch):
    """Credential → streamed PUT of real media → submit → query, over real sockets."""
    monkeypatch.setattr("engine.remote.topview.UPLOAD_CHUNK", 64 << 10)  # several chunks per file
    image, audio = media_cache.photo(), media_cache.audio(2.0)
    assert image.stat().st_size > 3 * (64 << 10)
    file_ids = iter(["fid-image", "fid-audio"])
    stored = {}

    def credential(handler, body):
        file_id = next(file_ids)
        extension = parse_qs(urlsplit(handler.path).query)["format"][0]
        return 200, {"Content-Type": "application/json"}, json.dumps({"code": "200", "message": "Success", "result": {
            "uploadUrl": f"{local_server.url}/bucket/{file_id}?X-Amz-Signature=abc", "fileId": file_id,
            "format": extension}}).encode()

    def upload(name):
        def handle(handler, body):
            stored[name] = body
            return 200, {}, b""
        return handle

    polls = iter(["running", "success"])
    local_server.routes[("GET", "/v1/upload/credential")] = credential
    local_server.routes[("PUT", "/bucket/fid-image")] = upload("fid-image")
    local_server.routes[("PUT", "/bucket/fid-audio")] = upload("fid-audio")
    local_server.routes[("POST", "/v1/video_avatar/task/submit")] = lambda h, b: (
        200, {"Content-Type": "application/json"},
        json.dumps({"code": "200", "message": "Success", "result": {"taskId": "tv-task-1"}}).encode())
    local_server.routes[("GET", "/v1/video_avatar/task/query")] = lambda h, b: (
        200, {"Content-Type": "application/json"}, json.dumps({"code": "200", "message": "Success", "result": {
            "taskId": "tv-task-1", "status": next(polls),
            "finishedVideoUrl": f"{local_server.url}/out/tv-task-1.mp4"}}).encode())

    engine = TopViewEngine({"api_key": KEY, "uid": UID}, base_url=local_server.url)
    task = engine.start_render(RenderRequest(
        avatar_source=Media(path=image, format="png"), avatar_kind="photo", audio=Media(path=audio, format="wav")))
    assert task.task_id == "tv-task-1"
    assert stored["fid-image"] == image.read_bytes() and stored["fid-audio"] == audio.read_bytes()
    puts = [r for r in local_server.requests if r["method"] == "PUT"]
    for put, path in zip(puts, (image, audio)):
        assert put["headers"]["Content-Length"] == str(path.stat().st_size)  # S3 presigned PUTs refuse chunked
        assert "Transfer-Encoding" not in put["headers"]
        assert "Authorization" not in put["headers"] and "Topview-Uid" not in put["headers"]
    submitted = json.loads([r for r in local_server.requests if r["method"] == "POST"][0]["body"])
    assert submitted == {"avatarSourceFrom": 3, "imageFileId": "fid-image", "audioSourceFrom": 0,
                         "audioFileId": "fid-audio", "modeType": 1}
    assert engine.render_status(task).state == "running"
    done = engine.render_status(task)
    assert done.state == "succeeded" and done.video_url.endswith("/out/tv-task-1.mp4")
    order = [(r["method"], r["path"].split("?")[0]) for r in local_server.requests]
    assert order == [("GET", "/v1/upload/credential"), ("PUT", "/bucket/fid-image"),
                     ("GET", "/v1/upload/credential"), ("PUT", "/bucket/fid-audio"),
                     ("POST", "/v1/video_avatar/task/submit"),
                     ("GET", "/v1/video_avatar/task/query"), ("GET", "/v1/video_avatar/task/query")]
