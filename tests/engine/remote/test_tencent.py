import json

import httpx
import pytest
import respx

from engine.errors import InputRejected
from engine.remote import (
    AvatarRequest,
    CallbackRejected,
    Media,
    ProviderAuthError,
    ProviderInputRejected,
    ProviderQuotaError,
    ProviderTask,
    RenderRequest,
    TencentEngine,
    TransientProviderError,
)

# Tencent's published signing example: these inputs sign to BfWuaC9kmaicCggXc693uK+sZQ8qe88O4HVQNTdwZuo=
APPKEY, TOKEN, NOW = "e38267c0e86411ebb02aed82acb0ed99", "f68f2d10ae9e4604b76fb05cf46bccec", 1646636485
SIGNED_QUERY = f"appkey={APPKEY}&timestamp={NOW}&signature=BfWuaC9kmaicCggXc693uK%2BsZQ8qe88O4HVQNTdwZuo%3D"
HOST = "https://gw-sg.tvs.qq.com"
NO_TRAIN = f"{HOST}/v2/ivh/videomaker/broadcastservice/videomakenotrain"
VIDEO_PROGRESS = f"{HOST}/v2/ivh/videomaker/broadcastservice/getprogress"
MAKE = f"{HOST}/v2/ivh/assetmanager/customservice/make"
MAKE_PROGRESS = f"{HOST}/v2/ivh/assetmanager/customservice/getprogress"
REF_VIDEO = "http://virtualhuman-cos-test-1251316161.cos.ap-nanjing.myqcloud.com/ref_video.mp4"
AUDIO_URL = "http://virtualhuman-cos-test-1251316161.cos.ap-nanjing.myqcloud.com/audio.mp3"
VIDEO = Media(url=REF_VIDEO, format="mp4", duration=30.0, width=1920, height=1080, video_codec="h264")
AUDIO = Media(url=AUDIO_URL, format="mp3", duration=8.0, size_bytes=200_000)
COS = "https://bucket.cos.ap-singapore.myqcloud.com/customer-pipeline/12/6f1c"
MATERIAL = Media(url=f"{COS}/video/c.mp4", format="mp4", duration=180.0, width=1920, height=1080, fps=30.0,
                 size_bytes=800 << 20)
IDENTITY = {"identity_video_url": f"{COS}/idcard/a.mp4"}
RESPONSE = {"Header": {"Code": 0, "DialogID": "", "Message": "", "RequestID": "fde854eaa981c7f2f7285d1c7eca335b",
                       "SessionID": "gzb7dec22117297528294581119"},
            "Payload": {"TaskId": "81883d47c6154edf8e276531f09227b6"}}


@pytest.fixture
def tencent():
    with TencentEngine({"appkey": APPKEY, "access_token": TOKEN}, clock=lambda: NOW) as engine:
        yield engine


def payload(answer):
    return httpx.Response(200, json={"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": answer})


def sent(route):
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url.query.decode() == SIGNED_QUERY
    assert request.headers["Content-Type"] == "application/json;charset=utf-8"
    body = json.loads(request.content)
    assert list(body) == ["Header", "Payload"] and body["Header"] == {}
    return body["Payload"]


@respx.mock
def test_a_text_render_matches_the_documents_sample(tencent):
    route = respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json=RESPONSE))
    ssml = 'Hello, I am the virtual <phoneme alphabet="py" ph="fu4">anchor</phoneme>'
    task = tencent.start_render(RenderRequest(avatar_source=VIDEO, text=ssml, voice="female_1", volume=1, speed=1.0))
    assert sent(route) == {"RefVideoUrl": REF_VIDEO, "DriverType": "Text", "InputSsml": ssml,
                           "SpeechParam": {"TimbreKey": "female_1", "Volume": 1, "Speed": 1.0}}
    assert task.task_id == "81883d47c6154edf8e276531f09227b6"


@respx.mock
def test_an_audio_render_matches_the_documents_sample(tencent):
    route = respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json=RESPONSE))
    tencent.start_render(RenderRequest(avatar_source=VIDEO, audio=AUDIO))
    assert sent(route) == {"RefVideoUrl": REF_VIDEO, "DriverType": "OriginalVoice", "InputAudioUrl": AUDIO_URL}


@respx.mock
def test_plain_text_is_escaped_and_flattened_to_one_line(tencent):
    route = respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json=RESPONSE))
    tencent.start_render(RenderRequest(avatar_source=VIDEO, text="Salt & pepper\n< 5 minutes", voice="female_1"))
    assert sent(route)["InputSsml"] == "Salt &amp; pepper &lt; 5 minutes"


@respx.mock
@pytest.mark.parametrize("changes, video_param, top", [
    ({"loop_mode": "forward"}, None, {"VideoLoop": 1}),
    ({"loop_mode": "custom", "segment_start": 2.0, "segment_end": 9.5},
     {"MakeType": "Custom", "StartTime": 2.0, "EndTime": 9.5}, {}),
    ({"loop_mode": "circle", "segment_start": 1.25}, {"MakeType": "Circle", "StartTime": 1.25}, {}),
    ({"loop_mode": "reverse", "segment_start": 3.0}, {"MakeType": "CustomOnlyStart", "StartTime": 3.0}, {}),
    ({"disable_intervals": [(1, 2), (3, 4.5)]},
     {"DisableIntervals": [{"StartTime": 1.0, "EndTime": 2.0}, {"StartTime": 3.0, "EndTime": 4.5}]}, {}),
    ({"options": {"ref_photo_url": "https://m.example.com/face.jpg", "occlusion_detection": False,
                  "face_tracking": False, "fake_teeth": True}},
     {"RefPhotoUrl": "https://m.example.com/face.jpg", "DisableOcclusionDetect": 1, "DisableIdDetect": 1,
      "EnableFakeTeeth": 1}, {}),
    ({"options": {"concurrency_type": "Exclusive", "consistent_parameters": True,
                  "identity_pdf_url": "https://m.example.com/letter.pdf"}},
     None, {"ConcurrencyType": "Exclusive", "VideoParametersConsistent": 1,
            "IdentityWrittenUrl": "https://m.example.com/letter.pdf"}),
    ({"callback_url": "https://studio.example.com/hooks/tencent?ref=r&sig=s"}, None,
     {"CallbackUrl": "https://studio.example.com/hooks/tencent?ref=r&sig=s"}),
])
def test_render_options_map_to_videomakenotrain_fields(tencent, changes, video_param, top):
    route = respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json=RESPONSE))
    tencent.start_render(RenderRequest(avatar_source=VIDEO, audio=AUDIO, **changes))
    body = sent(route)
    assert body.get("VideoParam") == video_param
    for key, value in top.items():
        assert body[key] == value
    assert "VideoLoop" not in body or top.get("VideoLoop") == 1


@respx.mock
def test_speech_parameters_carry_emotion_and_language(tencent):
    route = respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json=RESPONSE))
    tencent.start_render(RenderRequest(avatar_source=VIDEO, text="Hello there", voice="v1", speed=0.8, volume=5,
                                       options={"emotion_category": "happy", "emotion_intensity": 150,
                                                "timbre_language": "en"}))
    assert sent(route)["SpeechParam"] == {"TimbreKey": "v1", "Speed": 0.8, "Volume": 5, "EmotionCategory": "happy",
                                          "EmotionIntensity": 150, "TimbreLanguage": "en"}


@respx.mock
def test_render_progress_polls_to_success_with_subtitles(tencent):
    route = respx.post(VIDEO_PROGRESS).mock(side_effect=[
        payload({"Progress": 0, "Status": "COMMIT", "ArrayCount": 3, "MediaUrl": ""}),
        payload({"Progress": 40, "Status": "MAKING", "ArrayCount": 0, "MediaUrl": ""}),
        payload({"Progress": 100, "Status": "SUCCESS", "MediaUrl": "https://videomaker.qq.com/r.mp4",
                 "SubtitlesUrl": "https://videomaker.qq.com/r.srt", "ArrayCount": 0, "Duration": 11810}),
    ])
    task = ProviderTask("tencent", "render", "81883d47c6154edf8e276531f09227b6")
    queued, making, done = (tencent.render_status(task) for _ in range(3))
    assert sent(route) == {"TaskId": "81883d47c6154edf8e276531f09227b6"}
    assert (queued.state, queued.queue_position) == ("queued", 3)
    assert making.state == "running"
    assert done.state == "succeeded"
    assert done.video_url == "https://videomaker.qq.com/r.mp4" and done.captions_url == "https://videomaker.qq.com/r.srt"


@respx.mock
def test_render_progress_polls_to_failure(tencent):
    respx.post(VIDEO_PROGRESS).mock(return_value=payload(
        {"Progress": -1, "Status": "FAIL", "FailCode": 3001, "FailMessage": "face not found in video"}))
    status = tencent.render_status(ProviderTask("tencent", "render", "t"))
    assert status.state == "failed" and "face not found in video" in status.error and status.raw_status == "FAIL"


@respx.mock
def test_customisation_sends_the_documented_fields(tencent):
    route = respx.post(MAKE).mock(return_value=httpx.Response(200, json={
        "Header": {"Code": 0, "DialogID": "", "Message": "", "RequestID": "123"}, "Payload": {"TaskId": "666"}}))
    task = tencent.start_avatar(AvatarRequest(
        name="Jingxuan_green-dress", source=MATERIAL, gender="female",
        options={**IDENTITY, "identity_pdf_url": f"{COS}/idcard/b.pdf", "make_type": "IMAGE",
                 "keep_background": True, "notes": "sitting pose", "demo_text": "Hello, welcome.",
                 "demo_audio_url": f"{COS}/audio/example.wav"}))
    assert sent(route) == {
        "AnchorName": "Jingxuan_green-dress", "MakeType": "IMAGE", "MaterialCosUrl": MATERIAL.url,
        "SexType": "FEMALE", "IdentityCosUrl": f"{COS}/idcard/a.mp4", "IdentityWrittenCosUrl": f"{COS}/idcard/b.pdf",
        "Notes": "sitting pose", "TextDriver": "Hello, welcome.", "VoiceDriverCosFile": f"{COS}/audio/example.wav",
        "IsHaveBackground": True}
    assert (task.kind, task.task_id, task.data["make_type"]) == ("avatar", "666", "IMAGE")


@respx.mock
def test_a_photo_customisation_needs_no_authorisation(tencent):
    route = respx.post(MAKE).mock(return_value=payload({"TaskId": "667"}))
    photo = Media(url=f"{COS}/photo/example.png", format="png", width=1080, height=1920, size_bytes=3 << 20)
    tencent.start_avatar(AvatarRequest(name="汤姆_1", source=photo, kind="photo", gender="male"))
    assert sent(route) == {"AnchorName": "汤姆_1", "MakeType": "IMAGE_PHOTO", "MaterialCosUrl": photo.url,
                           "SexType": "MALE"}


@respx.mock
def test_customisation_progress_reports_stages(tencent):
    route = respx.post(MAKE_PROGRESS).mock(side_effect=[
        payload({"Status": "MAKING", "StageV2": "SUBMIT", "StatusV2": "WAIT_PROCESS"}),
        payload({"Status": "MAKING", "StageV2": "AUDIT", "StatusV2": "PROCESSING"}),
        payload({"Status": "MAKING", "StageV2": "CONFIRM", "StatusV2": "WAIT_PROCESS"}),
        payload({"Status": "SUCCESS", "StageV2": "END", "StatusV2": "SUCCESS"}),
        payload({"Status": "FAIL", "StageV2": "AUDIT", "StatusV2": "FAIL", "FailMessage": "authorisation unclear"}),
    ])
    task = ProviderTask("tencent", "avatar", "666")
    submit, audit, confirm, done, failed = (tencent.avatar_status(task) for _ in range(5))
    assert sent(route) == {"TaskId": "666"}
    assert submit.state == "queued"
    assert audit.state == "running" and "by hand" in audit.note
    assert confirm.state == "running" and "confirmed" in confirm.note and confirm.raw_status == "MAKING/CONFIRM/WAIT_PROCESS"
    assert done.state == "succeeded"
    assert failed.state == "failed" and "authorisation unclear" in failed.error


@respx.mock
@pytest.mark.parametrize("message, error", [
    ("signature verification failed", ProviderAuthError),
    ("UnauthorizedOperation: No project was created for this appkey", ProviderAuthError),
    ("hourly package not purchased", ProviderQuotaError),
    ("RefVideoUrl download failed", ProviderInputRejected),
])
def test_header_error_codes_become_sentences(tencent, message, error):
    respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json={"Header": {"Code": 110001, "Message": message},
                                                                     "Payload": {}}))
    with pytest.raises(error) as caught:
        tencent.start_render(RenderRequest(avatar_source=VIDEO, audio=AUDIO))
    assert message in str(caught.value) and caught.value.code in (110001, "110001")


@respx.mock
def test_a_gateway_timeout_is_transient(tencent):
    respx.post(VIDEO_PROGRESS).mock(return_value=httpx.Response(504))
    with pytest.raises(TransientProviderError):
        tencent.render_status(ProviderTask("tencent", "render", "t"))


def test_callbacks_are_verified_and_parsed(tencent):
    url = tencent.callback_url("https://studio.example.com/hooks/tencent", reference="render-9", secret="s3cret")
    body = json.dumps({"Payload": {"Progress": 100, "MediaUrl": "https://v.qq.com/r.mp4", "SubtitlesUrl": "",
                                   "Status": "SUCCESS", "FailMessage": "", "TaskId": "81883d47"}}).encode()
    event = tencent.verify_callback(url=url, headers={}, body=body, secret="s3cret")
    assert event.task_id == "81883d47"
    assert event.status.state == "succeeded" and event.status.video_url == "https://v.qq.com/r.mp4"
    with pytest.raises(CallbackRejected):
        tencent.verify_callback(url=url.replace("render-9", "render-8"), headers={}, body=body, secret="s3cret")
    with pytest.raises(CallbackRejected):
        tencent.verify_callback(url=url, headers={}, body=b"{not json", secret="s3cret")
    with pytest.raises(CallbackRejected):
        tencent.verify_callback(url=url, headers={}, body=b'{"Payload": {}}', secret="s3cret")


def render(**changes):
    fields = dict(avatar_source=VIDEO, audio=AUDIO)
    fields.update(changes)
    return RenderRequest(**fields)


@pytest.mark.parametrize("request_, field, words", [
    (render(audio=None, text="Hi!", voice="female_1"), "script", "between 4 and 2,000 characters"),
    (render(audio=None, text="a" * 2001, voice="female_1"), "script", "2,001"),
    (render(audio=None, text="&" * 1000, voice="female_1"), "script", "once symbols are escaped"),
    (render(audio=None, text="Hello there"), "voice", "TimbreKey"),
    (render(audio=None, text="Hello there", voice="v", speed=2.0), "speed", "0.5 and 1.5"),
    (render(audio=None, text="Hello there", voice="v", volume=11), "volume", "0 and 10"),
    (render(avatar_source=Media(url=REF_VIDEO, format="mp4", duration=601.0)), "avatar", "1–600 s"),
    (render(avatar_source=Media(url=REF_VIDEO, format="mkv")), "avatar", "MP4, MOV or AVI"),
    (render(avatar_source=Media(url=REF_VIDEO, format="mp4", video_codec="hevc")), "avatar", "H.264"),
    (render(avatar_source=Media(url=REF_VIDEO, format="mp4", width=320, height=240)), "avatar", "360 and 4096"),
    (render(avatar_source=Media(url=REF_VIDEO, format="mp4", size_bytes=6 << 30)), "avatar", "5 GB"),
    (render(audio=Media(url=AUDIO_URL, format="flac")), "audio", "WAV, MP3, WMA, M4A, AAC or OGG"),
    (render(audio=Media(url=AUDIO_URL, format="mp3", size_bytes=101 << 20)), "audio", "100 MB"),
    (render(audio=Media(url=AUDIO_URL, format="mp3", duration=0.5)), "audio", "lasts 0.5 s"),
    (render(audio=Media(url=AUDIO_URL, format="mp3", duration=660)), "audio", "10 minutes"),
    (render(avatar_source=Media(url=REF_VIDEO, format="png"), avatar_kind="photo"), "avatar", "photo"),
    (render(avatar_source=None, avatar_id="vm-key"), "avatar", "footage"),
    (render(width=1280, height=720), "size", "own size"),
    (render(loop_mode="forward", segment_start=2.0), "loop_mode", "CustomOnlyStart"),
    (render(loop_mode="reverse", segment_start=1.0, segment_end=9.0), "loop_mode", "custom"),
    (render(loop_mode="circle", segment_start=1.0, segment_end=9.0), "segment_end", "start time only"),
    (render(loop_mode="custom", segment_start=1.0, segment_end=4.0), "segment_end", "at least 5 s apart"),
    (render(disable_intervals=[(i, i + 0.5) for i in range(6)]), "disable_intervals", "at most 5"),
    (render(disable_intervals=[(3, 4), (1, 2)]), "disable_intervals", "chronological"),
    (render(callback_url="https://studio.example.com/h?" + "x" * 1000), "callback_url", "1000"),
    (render(options={"concurrency_type": "Dedicated"}), "concurrency_type", "Exclusive or Shared"),
    (render(options={"emotion_intensity": 20}), "emotion_intensity", "50 and 200"),
])
def test_render_input_is_refused_before_anything_is_sent(tencent, request_, field, words):
    with respx.mock, pytest.raises(InputRejected) as caught:
        tencent.start_render(request_)
    assert caught.value.field == field
    assert words in str(caught.value)


@respx.mock
def test_exclusive_concurrency_allows_twenty_minutes(tencent):
    respx.post(NO_TRAIN).mock(return_value=httpx.Response(200, json=RESPONSE))
    long_video = Media(url=REF_VIDEO, format="mp4", duration=1100.0)
    tencent.start_render(render(avatar_source=long_video, options={"concurrency_type": "Exclusive"}))


def avatar(**changes):
    fields = dict(name="Tom_blue-suit", source=MATERIAL, options=dict(IDENTITY))
    fields.update(changes)
    return AvatarRequest(**fields)


@pytest.mark.parametrize("request_, field, words", [
    (avatar(name="Tom in a suit"), "name", "no spaces"),
    (avatar(name="T"), "name", "2–50"),
    (avatar(name="T" * 51), "name", "2–50"),
    (avatar(options={}), "identity_video_url", "authorisation letter"),
    (avatar(options={"identity_video_url": f"{COS}/video/a.mp4"}), "identity_video_url", "/idcard/"),
    (avatar(options={"identity_pdf_url": f"{COS}/idcard/a.docx"}), "identity_pdf_url", "PDF"),
    (avatar(source=Media(url="https://m.example.com/s/c.mp4", format="mp4")), "source", "/video/"),
    (avatar(source=Media(url=MATERIAL.url, format="mp4", duration=45.0)), "source",
     "1–10 minutes of video for an Instant Avatar"),
    (avatar(source=Media(url=MATERIAL.url, format="mp4", duration=90.0), options={**IDENTITY, "make_type": "IMAGE"}),
     "source", "2–10 minutes of video for a Studio Avatar"),
    (avatar(options={**IDENTITY, "make_type": "IMAGE_4K"}), "source", "4K"),
    (avatar(source=Media(url=MATERIAL.url, format="mp4", width=1280, height=720)), "source", "1080p or 4K"),
    (avatar(source=Media(url=MATERIAL.url, format="mp4", fps=24.0)), "source", "25–60"),
    (avatar(source=Media(url=MATERIAL.url, format="mp4", size_bytes=6 << 30, width=1920, height=1080)), "source",
     "5 GB"),
    (avatar(source=Media(url=MATERIAL.url, format="avi")), "source", "MP4 or MOV"),
    (avatar(options={**IDENTITY, "make_type": "VOICE"}), "make_type", "IMAGE, IMAGE_GENERAL or IMAGE_4K"),
    (avatar(options={**IDENTITY, "notes": "n" * 101}), "notes", "100"),
    (avatar(options={**IDENTITY, "demo_text": "Hi"}), "demo_text", "4–1000"),
    (avatar(options={**IDENTITY, "demo_audio_url": f"{COS}/audio/x.ogg"}), "demo_audio_url", "WAV, MP3"),
    (avatar(background_color=(0, 255, 0)), "background", "keep_background"),
    (avatar(kind="photo", source=Media(url=f"{COS}/photo/a.png", format="png")), "source", "file name"),
    (avatar(kind="photo", source=Media(url=f"{COS}/photo/face.png", format="png", width=1500, height=1000)),
     "source", "1:1, 9:16, 16:9 or 4:3"),
    (avatar(kind="photo", source=Media(url=f"{COS}/photo/face.gif", format="gif")), "source", "JPG, JPEG, PNG or WEBP"),
    (avatar(kind="photo", source=Media(url=f"{COS}/photo/face.png", format="png", size_bytes=17 << 20)), "source",
     "16 MB"),
])
def test_customisation_input_is_refused_before_anything_is_sent(tencent, request_, field, words):
    with respx.mock, pytest.raises(InputRejected) as caught:
        tencent.start_avatar(request_)
    assert caught.value.field == field
    assert words in str(caught.value)
