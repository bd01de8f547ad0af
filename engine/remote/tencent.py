"""Tencent Cloud AI Digital Human: avatar customisation, and rendering without training.

From the documents (docs/providers/tencent-customization.txt, tencent-videomakenotrain.txt):
every call is HTTPS + JSON with ``Content-Type: application/json;charset=utf-8`` and the body
``{"Header": {}, "Payload": {…}}``; answers carry ``Header.Code`` (0 = success), ``Message``,
``RequestID`` and the result in ``Payload``.

- ``POST /v2/ivh/assetmanager/customservice/make``: ``AnchorName`` (2–50 characters: Chinese
  characters, letters, digits, ``_`` and ``-``), ``MakeType`` (IMAGE, IMAGE_GENERAL, IMAGE_4K,
  IMAGE_PHOTO for avatars), ``SexType``, ``MaterialCosUrl`` (a ``…/video/…`` or ``…/photo/…``
  path), ``IdentityCosUrl``/``IdentityWrittenCosUrl`` (``…/idcard/…``; one of them for every
  type but IMAGE_PHOTO), ``IsHaveBackground``, ``Notes`` (≤100), ``TextDriver`` (4–1000),
  ``VoiceDriverCosFile``; video material 1–10 min (Instant) or 2–10 min (Studio, 4K), 1080p or
  4K (4K required for IMAGE_4K), 16:9 or 9:16, 25–60 fps, MP4/MOV, ≤5 GB (≤10 GB in 4K); photo
  JPG/JPEG/PNG/WEBP ≤16 MB, 1:1, 9:16, 16:9 or 4:3, file name ≥2 of the same characters.
- VideoMakeNoTrain: ``RefVideoUrl`` (MP4/MOV/AVI in H.264, ≤5 GB, 360–4096 px, 1–600 s, 1200 s
  with Exclusive concurrency), ``DriverType`` ``Text`` (``InputSsml`` 4–2000 characters, no line
  breaks; ``SpeechParam`` with ``TimbreKey``, ``Speed`` 0.5–1.5, ``Volume`` 0–10, emotion) or
  ``OriginalVoice`` (``InputAudioUrl``: WAV/MP3/WMA/M4A/AAC/OGG, 1 s–10 min, ≤100 MB),
  ``ConcurrencyType``, ``VideoLoop`` (0 reverse, 1 forward), ``VideoParametersConsistent``,
  ``CallbackUrl`` (<1000 characters, one attempt), ``VideoParam`` (``RefPhotoUrl``,
  ``DisableIdDetect``, ``DisableOcclusionDetect``, ``EnableFakeTeeth``, ``MakeType``
  Default/Custom/Circle/CustomOnlyStart with ``StartTime``/``EndTime``, ``DisableIntervals`` ≤5
  in order) → ``TaskId``.

Where the documents are silent (assumptions, also in docs/providers.md):
- Host ``https://gw-sg.tvs.qq.com`` and request signing: the common query parameters
  ``appkey``, ``timestamp`` (seconds) and ``signature`` = Base64(HMAC-SHA256(access token,
  "appkey=…&timestamp=…")), Tencent's aPaaS convention that the envelope belongs to.
- VideoMakeNoTrain's path: ``/v2/ivh/videomaker/broadcastservice/videomakenotrain``; its
  progress: ``/v2/ivh/videomaker/broadcastservice/getprogress`` (``Status`` COMMIT, MAKING,
  SUCCESS, FAIL; ``MediaUrl``, ``SubtitlesUrl`` for SRT captions, ``ArrayCount``,
  ``FailMessage``); customisation progress: ``/v2/ivh/assetmanager/customservice/getprogress``
  (``Status`` MAKING/SUCCESS/FAIL, ``StageV2``/``StatusV2``). The callback body is the progress
  payload under ``Payload``.
- ``DisableIntervals`` items are objects ``{"StartTime", "EndTime"}`` (the sub-table), not the
  ``[[1,2]]`` shorthand of the prose.
- The customisation table's ``IsHaveBackground`` is used (its sample shows
  ``IsRemoveBackground``); its sample anchor name has spaces and a comma, which rule 3 forbids:
  the rule is enforced.
- Line breaks in a script become spaces (the text must not contain them); a script without
  SSML tags has ``&``, ``<`` and ``>`` escaped ("symbols must be escaped").
- Tencent does not sign callbacks, so the callback URL carries our own HMAC of the job
  reference (``signed_callback_url``); a callback only hastens polling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from html import escape
from urllib.parse import unquote, urlsplit

from ..errors import InputRejected
from .base import (
    AvatarRequest,
    CallbackEvent,
    Capabilities,
    Credentials,
    MediaRule,
    OptionSpec,
    ProviderEngine,
    ProviderTask,
    RenderRequest,
    Status,
    callback_reference,
    check_url,
    option,
    signed_callback_url,
)
from .errors import CallbackRejected
from .http import ProviderHttp

BASE_URL = "https://gw-sg.tvs.qq.com"
MAKE_PATH = "/v2/ivh/assetmanager/customservice/make"
MAKE_PROGRESS_PATH = "/v2/ivh/assetmanager/customservice/getprogress"
NO_TRAIN_PATH = "/v2/ivh/videomaker/broadcastservice/videomakenotrain"
VIDEO_PROGRESS_PATH = "/v2/ivh/videomaker/broadcastservice/getprogress"

ANCHOR_NAME = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9_-]{2,50}$")
FILE_NAME = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9_-]{2,}$")
SSML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
VIDEO_MAKE_TYPES = ("IMAGE", "IMAGE_GENERAL", "IMAGE_4K")
_MATERIAL_SECONDS = {"IMAGE": (120.0, 600.0), "IMAGE_GENERAL": (60.0, 600.0), "IMAGE_4K": (120.0, 600.0)}
_MAKE_NAMES = {"IMAGE": "a Studio Avatar", "IMAGE_GENERAL": "an Instant Avatar", "IMAGE_4K": "a 4K Studio Avatar"}
_PHOTO_RATIOS = ((1, 1), (9, 16), (16, 9), (4, 3))
_VIDEO_STATES = {"COMMIT": "queued", "MAKING": "running", "SUCCESS": "succeeded", "FAIL": "failed"}


def sign(appkey: str, access_token: str, timestamp: int) -> str:
    """Tencent aPaaS request signature (before URL encoding, which httpx does)."""
    message = f"appkey={appkey}&timestamp={timestamp}"
    digest = hmac.new(access_token.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class TencentEngine(ProviderEngine):
    name = "tencent"
    label = "Tencent"
    credential_fields = ("appkey", "access_token")
    capabilities = Capabilities(
        avatar_video=MediaRule(
            "the customisation video", "source", formats=("mp4", "mov"), max_bytes=10 << 30,
            note="1–10 min (Instant Avatar) or 2–10 min (Studio, 4K); 1080p or 4K, 16:9 or 9:16, 25–60 fps; "
                 "≤5 GB (≤10 GB in 4K); uploaded to Tencent COS under …/video/",
        ),
        avatar_image=MediaRule(
            "the customisation photo", "source", formats=("jpg", "jpeg", "png", "webp"), max_bytes=16 << 20,
            note="1:1, 9:16, 16:9 or 4:3; clear, frontal, mouth closed; uploaded to Tencent COS under …/photo/",
        ),
        render_video=MediaRule(
            "the avatar video", "avatar", formats=("mp4", "mov", "avi"), seconds=(1.0, 1200.0), max_bytes=5 << 30,
            edge=(360, 4096), note="H.264; 1–600 s (1200 s with Exclusive concurrency); 10–120 s recommended",
        ),
        audio=MediaRule("the audio", "audio", formats=("wav", "mp3", "wma", "m4a", "aac", "ogg"),
                        seconds=(1.0, 1200.0), max_bytes=100 << 20,
                        note="1 s–10 min (20 min with Exclusive concurrency)"),
        text_length=(4, 2000),
        captions=True,
        loop_modes=("reverse", "forward", "circle", "custom"),
        segments=True,
        max_disable_intervals=5,
        callbacks=True,
        avatar_options=(
            OptionSpec("make_type", "choice", "Video customisation type: IMAGE (Studio), IMAGE_GENERAL "
                       "(Instant) or IMAGE_4K (4K Studio).", choices=VIDEO_MAKE_TYPES, default="IMAGE_GENERAL"),
            OptionSpec("identity_video_url", "str", "Video authorisation letter on Tencent COS (…/idcard/….mp4)."),
            OptionSpec("identity_pdf_url", "str", "Written authorisation letter on Tencent COS (…/idcard/….pdf)."),
            OptionSpec("keep_background", "bool", "Keep the original background (IsHaveBackground).",
                       default=False),
            OptionSpec("notes", "str", "Remarks for Tencent, up to 100 characters."),
            OptionSpec("demo_text", "str", "Text for the driving demo, 4–1000 characters (SSML allowed)."),
            OptionSpec("demo_audio_url", "str", "Audio for the driving demo on Tencent COS (…/audio/…), ≤10 MB."),
        ),
        render_options=(
            OptionSpec("concurrency_type", "choice", "Exclusive (bought concurrency, up to 20 min) or Shared "
                       "(hourly package).", choices=("Exclusive", "Shared")),
            OptionSpec("consistent_parameters", "bool", "Match the input's bitrate and frame rate "
                       "(VideoParametersConsistent).", default=False),
            OptionSpec("ref_photo_url", "str", "A photo of the face to lip-sync when several people appear."),
            OptionSpec("face_tracking", "bool", "Follow one face ID (off: every detected face is driven).",
                       default=True),
            OptionSpec("occlusion_detection", "bool", "Leave the mouth alone while something covers it.",
                       default=True),
            OptionSpec("fake_teeth", "bool", "Regenerate the teeth instead of learning them from the video.",
                       default=False),
            OptionSpec("emotion_category", "str", "Emotion of a multi-emotion voice."),
            OptionSpec("emotion_intensity", "int", "Strength of the emotion, 50–200.", minimum=50, maximum=200),
            OptionSpec("timbre_language", "str", "Language of a multilingual voice."),
            OptionSpec("identity_video_url", "str", "Video authorisation letter (MP4, <5 GB)."),
            OptionSpec("identity_pdf_url", "str", "Written authorisation letter (PDF, <10 MB)."),
        ),
        refusals=(
            ("Renders take the avatar's footage (VideoMakeNoTrain); rendering a customised anchor needs "
             "Tencent's other video APIs, which are not part of this integration."),
            "No photo renders: VideoMakeNoTrain needs a reference video.",
            "No output size: the result keeps the input's resolution (≤2560×1440 shared, ≤4096 exclusive).",
            "Voice customisation (VOICE, ZERO_SHOT_VOICE) is not an avatar and is not offered.",
        ),
    )

    def __init__(self, credentials: Mapping[str, str], *, base_url: str = BASE_URL, timeout=None, client=None,
                 clock=time.time):
        self._credentials = Credentials(self.label, credentials, self.credential_fields)
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._http = ProviderHttp(self.label, self._credentials.secrets(), timeout=timeout, client=client)

    # --- avatars ---------------------------------------------------------------------------
    def _check_avatar(self, request: AvatarRequest) -> None:
        name = request.name.strip()
        if not ANCHOR_NAME.match(name):
            raise InputRejected(
                "Tencent's anchor name must be 2–50 characters of Chinese characters, letters, numbers, "
                "underscores or hyphens (no spaces).", field="name", code="provider_anchor_name")
        if request.background_color is not None or request.background_image_url:
            raise InputRejected("Tencent does not set a background at customisation; choose whether to keep the "
                                "original one (keep_background).", field="background", code="provider_background")
        opts = request.options
        source = request.source
        if request.kind == "photo":
            if opts.get("make_type") is not None:
                raise InputRejected("A photo is always a Photo Avatar (IMAGE_PHOTO) at Tencent.", field="make_type",
                                    code="provider_option")
            _require_cos_folder(source.url, "photo", "The photo", "source")
            stem = unquote(urlsplit(source.url).path.rsplit("/", 1)[-1]).rsplit(".", 1)[0]
            if not FILE_NAME.match(stem):
                raise InputRejected("Tencent needs the photo's file name to be at least 2 characters of Chinese "
                                    "characters, letters, numbers, underscores or hyphens.", field="source",
                                    code="provider_file_name")
            if source.width and source.height and not _ratio_in(source.width, source.height, _PHOTO_RATIOS):
                raise InputRejected(f"Tencent takes photos in 1:1, 9:16, 16:9 or 4:3; this one is "
                                    f"{source.width}×{source.height}.", field="source", code="provider_aspect")
        else:
            make_type = opts.get("make_type") or "IMAGE_GENERAL"
            _require_cos_folder(source.url, "video", "The video", "source")
            low, high = _MATERIAL_SECONDS[make_type]
            if source.duration is not None and not low <= source.duration <= high:
                raise InputRejected(
                    f"Tencent needs {low / 60:.0f}–{high / 60:.0f} minutes of video for {_MAKE_NAMES[make_type]}; "
                    f"this one lasts {source.duration / 60:.1f} minutes.", field="source", code="provider_duration")
            is_4k = bool(source.width and source.height and sorted((source.width, source.height)) == [2160, 3840])
            is_1080 = bool(source.width and source.height and sorted((source.width, source.height)) == [1080, 1920])
            if source.width and source.height:
                if make_type == "IMAGE_4K" and not is_4k:
                    raise InputRejected(f"A 4K Studio Avatar needs 4K video (3840×2160 or 2160×3840); this one is "
                                        f"{source.width}×{source.height}.", field="source", code="provider_resolution")
                if not (is_4k or is_1080):
                    raise InputRejected(
                        "Tencent customises from 1080p or 4K video in 16:9 or 9:16 (1920×1080, 3840×2160 or "
                        f"upright); this one is {source.width}×{source.height}.", field="source",
                        code="provider_resolution")
            if source.size_bytes is not None and source.size_bytes > (5 << 30) and not is_4k:
                raise InputRejected("Tencent takes customisation videos up to 5 GB (10 GB only in 4K).",
                                    field="source", code="provider_size")
            if source.fps is not None and not 25 - 0.5 <= source.fps <= 60 + 0.5:
                raise InputRejected(f"Tencent needs 25–60 frames per second; this video has {source.fps:.0f}.",
                                    field="source", code="provider_fps")
            if not (opts.get("identity_video_url") or opts.get("identity_pdf_url")):
                raise InputRejected("Tencent needs an authorisation letter for a video avatar: a video or a PDF "
                                    "uploaded to Tencent COS under …/idcard/.", field="identity_video_url",
                                    code="provider_identity")
        for name, extension in (("identity_video_url", "mp4"), ("identity_pdf_url", "pdf")):
            if opts.get(name):
                _require_cos_folder(opts[name], "idcard", "The authorisation letter", name)
                if not urlsplit(opts[name]).path.lower().endswith("." + extension):
                    raise InputRejected(f"That authorisation letter must be a {extension.upper()} file.", field=name,
                                        code="provider_format")
        if opts.get("notes") and len(opts["notes"]) > 100:
            raise InputRejected("Tencent takes notes of up to 100 characters.", field="notes", code="provider_notes")
        if opts.get("demo_text") is not None and not 4 <= len(opts["demo_text"]) <= 1000:
            raise InputRejected("Tencent's demo text must have 4–1000 characters (SSML tags count).",
                                field="demo_text", code="provider_text_length")
        if opts.get("demo_audio_url"):
            _require_cos_folder(opts["demo_audio_url"], "audio", "The demo audio", "demo_audio_url")
            suffix = urlsplit(opts["demo_audio_url"]).path.rsplit(".", 1)[-1].lower()
            if suffix not in ("wav", "mp3", "wma", "m4a", "aac"):
                raise InputRejected("Tencent takes demo audio as WAV, MP3, WMA, M4A or AAC.", field="demo_audio_url",
                                    code="provider_format")

    def _start_avatar(self, request: AvatarRequest) -> ProviderTask:
        opts = request.options
        payload = {
            "AnchorName": request.name.strip(),
            "MakeType": "IMAGE_PHOTO" if request.kind == "photo" else (opts.get("make_type") or "IMAGE_GENERAL"),
            "MaterialCosUrl": request.source.url,
            "SexType": request.gender.upper(),
        }
        for name, key in (("identity_video_url", "IdentityCosUrl"), ("identity_pdf_url", "IdentityWrittenCosUrl"),
                          ("notes", "Notes"), ("demo_text", "TextDriver"), ("demo_audio_url", "VoiceDriverCosFile")):
            if opts.get(name):
                payload[key] = opts[name]
        if opts.get("keep_background") is not None:
            payload["IsHaveBackground"] = bool(opts["keep_background"])
        result = self._call(MAKE_PATH, payload)
        return ProviderTask(self.name, "avatar", self._task_id(result), {"make_type": payload["MakeType"]})

    def avatar_status(self, task: ProviderTask) -> Status:
        result = self._call(MAKE_PROGRESS_PATH, {"TaskId": task.task_id})
        raw = str(result.get("Status") or "")
        stage, stage_status = str(result.get("StageV2") or ""), str(result.get("StatusV2") or "")
        shown = "/".join(part for part in (raw, stage, stage_status) if part)
        if raw == "SUCCESS":
            return Status("succeeded", progress=1.0, raw_status=shown,
                          avatar_id=str(result.get("VirtualmanKey") or "") or None)
        if raw == "FAIL":
            reason = self._http.scrub(str(result.get("FailMessage") or "").strip())
            return Status("failed", raw_status=shown, error="Tencent could not customise the avatar."
                          + self._http.said(reason))
        note = ""
        if stage == "CONFIRM" and stage_status == "WAIT_PROCESS":
            note = "Tencent is waiting for the demo video to be confirmed in its console."
        elif stage == "AUDIT":
            note = "Tencent reviews the material by hand; this can take days."
        state = "queued" if stage in ("", "SUBMIT") and stage_status in ("", "WAIT_PROCESS") else "running"
        return Status(state, raw_status=shown, note=note)

    # --- renders ---------------------------------------------------------------------------
    def _check_render(self, request: RenderRequest) -> None:
        exclusive = request.options.get("concurrency_type") == "Exclusive"
        source = request.avatar_source
        if source.video_codec and source.video_codec.lower() not in ("h264", "avc", "avc1"):
            raise InputRejected(f"Tencent needs the avatar video in H.264, not {source.video_codec}; re-encode it "
                                "(the studio's prepared copy is H.264).", field="avatar", code="provider_codec")
        if source.duration is not None and source.duration > 600 and not exclusive:
            raise InputRejected(f"Tencent takes avatar videos of 1–600 s (up to 20 minutes with Exclusive "
                                f"concurrency); this one lasts {source.duration:.0f} s.", field="avatar",
                                code="provider_duration")
        if request.audio is not None and request.audio.duration is not None and request.audio.duration > 600 \
                and not exclusive:
            raise InputRejected(f"Tencent takes audio of 1 s–10 minutes (20 minutes with Exclusive concurrency); "
                                f"this one lasts {request.audio.duration / 60:.1f} minutes.", field="audio",
                                code="provider_duration")
        if request.text is not None and request.audio is None:
            ssml = _ssml(request.text)
            if not 4 <= len(ssml) <= 2000:
                raise InputRejected(f"Tencent takes a script of 4–2,000 characters once symbols are escaped; this one "
                                    f"has {len(ssml):,}.", field="script", code="provider_text_length")
            if not request.voice:
                raise InputRejected("Tencent reads a script with a voice (TimbreKey, e.g. female_1); choose one.",
                                    field="voice", code="provider_voice")
            if not 0.5 <= request.speed <= 1.5:
                raise InputRejected("Tencent's speech rate must be between 0.5 and 1.5.", field="speed",
                                    code="provider_speed")
            if not 0 <= request.volume <= 10:
                raise InputRejected("Tencent's volume must be between 0 and 10.", field="volume",
                                    code="provider_volume")
        mode, start, end = request.loop_mode, request.segment_start, request.segment_end
        if mode in ("reverse", "forward") and end is not None:
            raise InputRejected("To play a segment between a start and an end, choose the custom loop mode.",
                                field="loop_mode", code="provider_loop_mode")
        if mode == "forward" and start is not None:
            raise InputRejected("Tencent plays from a start time with reverse splicing only (CustomOnlyStart); "
                                "choose reverse, or circle.", field="loop_mode", code="provider_loop_mode")
        if mode == "circle" and end is not None:
            raise InputRejected("Tencent's circle mode takes a start time only; its end is where the loop closes.",
                                field="segment_end", code="provider_segment")
        if request.callback_url and len(request.callback_url) >= 1000:
            raise InputRejected("Tencent takes callback URLs shorter than 1000 characters.", field="callback_url",
                                code="provider_callback")
        for name in ("ref_photo_url", "identity_video_url", "identity_pdf_url"):
            if request.options.get(name):
                check_url(request.options[name], what="That URL", field=name)

    def _start_render(self, request: RenderRequest) -> ProviderTask:
        specs = self.capabilities.render_options
        opts = request.options
        payload: dict = {"RefVideoUrl": request.avatar_source.url}
        if request.audio is not None:
            payload["DriverType"] = "OriginalVoice"
            payload["InputAudioUrl"] = request.audio.url
        else:
            payload["DriverType"] = "Text"
            payload["InputSsml"] = _ssml(request.text)
            speech = {"TimbreKey": request.voice, "Speed": float(request.speed), "Volume": int(request.volume)}
            for name, key in (("emotion_category", "EmotionCategory"), ("emotion_intensity", "EmotionIntensity"),
                              ("timbre_language", "TimbreLanguage")):
                if opts.get(name) is not None:
                    speech[key] = opts[name]
            payload["SpeechParam"] = speech
        for name, key in (("identity_pdf_url", "IdentityWrittenUrl"), ("identity_video_url", "IdentityVideoUrl"),
                          ("concurrency_type", "ConcurrencyType")):
            if opts.get(name):
                payload[key] = opts[name]
        if option(request, "consistent_parameters", specs):
            payload["VideoParametersConsistent"] = 1
        if request.callback_url:
            payload["CallbackUrl"] = request.callback_url

        video: dict = {}
        mode, start, end = request.loop_mode, request.segment_start, request.segment_end
        if mode == "custom":
            video.update(MakeType="Custom", StartTime=round(start, 3), EndTime=round(end, 3))
        elif mode == "circle":
            video["MakeType"] = "Circle"
            if start is not None:
                video["StartTime"] = round(start, 3)
        elif start is not None:
            video.update(MakeType="CustomOnlyStart", StartTime=round(start, 3))
        elif mode == "forward":
            payload["VideoLoop"] = 1  # reverse splicing (0) is Tencent's default, so it goes unsaid
        if opts.get("ref_photo_url"):
            video["RefPhotoUrl"] = opts["ref_photo_url"]
        if not option(request, "face_tracking", specs):
            video["DisableIdDetect"] = 1
        if not option(request, "occlusion_detection", specs):
            video["DisableOcclusionDetect"] = 1
        if option(request, "fake_teeth", specs):
            video["EnableFakeTeeth"] = 1
        if request.disable_intervals:
            video["DisableIntervals"] = [{"StartTime": round(float(a), 3), "EndTime": round(float(b), 3)}
                                         for a, b in request.disable_intervals]
        if video:
            payload["VideoParam"] = video
        result = self._call(NO_TRAIN_PATH, payload)
        return ProviderTask(self.name, "render", self._task_id(result))

    def render_status(self, task: ProviderTask) -> Status:
        return self._video_status(self._call(VIDEO_PROGRESS_PATH, {"TaskId": task.task_id}))

    def _video_status(self, result: Mapping) -> Status:
        raw = str(result.get("Status") or "")
        state = _VIDEO_STATES.get(raw, "running")
        if state == "succeeded":
            if not result.get("MediaUrl"):
                return Status("failed", raw_status=raw, error="Tencent finished without a video.")
            return Status("succeeded", progress=1.0, video_url=result["MediaUrl"],
                          captions_url=result.get("SubtitlesUrl") or None, raw_status=raw)
        if state == "failed":
            reason = self._http.scrub(str(result.get("FailMessage") or "").strip())
            return Status("failed", raw_status=raw, error="Tencent could not make the video." + self._http.said(reason))
        queue = result.get("ArrayCount") if state == "queued" else None
        return Status(state, raw_status=raw, queue_position=queue if isinstance(queue, int) else None)

    # --- callbacks -------------------------------------------------------------------------
    def callback_url(self, base_url: str, *, reference: str, secret: str) -> str:
        return signed_callback_url(base_url, provider=self.name, reference=reference, secret=secret)

    def verify_callback(self, *, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> CallbackEvent:
        callback_reference(url, provider=self.name, secret=secret)
        try:
            payload = json.loads(body)["Payload"]
            task_id = str(payload["TaskId"])
        except (ValueError, KeyError, TypeError):
            raise CallbackRejected("The callback body is not Tencent's {\"Payload\": {…, \"TaskId\"}} format.") \
                from None
        if not task_id:
            raise CallbackRejected("The callback names no task.")
        return CallbackEvent(task_id, self._video_status(payload))

    # --- plumbing --------------------------------------------------------------------------
    def _call(self, path: str, payload: dict) -> dict:
        timestamp = int(self._clock())
        params = {"appkey": self._credentials["appkey"], "timestamp": str(timestamp),
                  "signature": sign(self._credentials["appkey"], self._credentials["access_token"], timestamp)}
        body = json.dumps({"Header": {}, "Payload": payload}, ensure_ascii=False).encode()
        response = self._http.request("POST", self.base_url + path, params=params, content=body,
                                      headers={"Content-Type": "application/json;charset=utf-8"})
        answer = self._http.json(response)
        header = answer.get("Header") or {}
        code = header.get("Code")
        if code not in (0, "0") or response.status_code >= 400:
            reason = self._http.scrub(str(header.get("Message") or ""))
            raise self._http.classify(code if code is not None else response.status_code, reason)
        result = answer.get("Payload")
        return result if isinstance(result, dict) else {}

    def _task_id(self, result: Mapping) -> str:
        task_id = str(result.get("TaskId") or "")
        if not task_id:
            raise self._http.failure("no TaskId in the answer")
        return task_id


def _ssml(text: str) -> str:
    flat = " ".join(text.split())
    return flat if SSML_TAG.search(flat) else escape(flat, quote=False)


def _require_cos_folder(url: str | None, folder: str, what: str, field: str) -> None:
    path = urlsplit(url or "").path
    if f"/{folder}/" not in path:
        raise InputRejected(f"{what} must be uploaded to Tencent COS under a …/{folder}/ path "
                            f"(e.g. /customer-pipeline/…/{folder}/file), as Tencent's customisation requires.",
                            field=field, code="provider_cos_path")


def _ratio_in(width: int, height: int, ratios) -> bool:
    return any(abs(width / height - a / b) <= 0.01 * (a / b) for a, b in ratios)
