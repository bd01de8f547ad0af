"""A2E: train a custom avatar from a video or an image, then render it from audio or text.

From the document (docs/providers/a2e.txt): ``POST /api/v1/userVideoTwin/startTraining`` with
``name``, ``gender`` (female/male), ``video_url`` *or* ``image_url``, a background colour as
``"rgb(r,g,b)"`` in ``video_backgroud_color`` *or* a background image in
``video_backgroud_image`` (the field names keep A2E's spelling), ``image_short_edge`` (image
mode only, default 640) and ``skipPreview`` (straight to "continue training"). Video: MP4 or
MOV, 10 s to 5 min, at most 4K, one face. Image: at most 10 MB and 4000 px a side, one frontal
face. URLs: no spaces, no redirects, and A2E reads the file type from the ``Content-Type``
header, not the suffix — so before sending we fetch the first byte of each URL and refuse a
redirect or a wrong type (``probe_urls``; the studio can turn it off when its public URLs are
not reachable from the worker). The answer is ``{"code": 0, "data": {"_id": …,
"current_status": …}}``; ``_id`` (the user_video_twin_id) finds the trained avatar in
``/api/v1/anchor/character_list``.

Where the document is silent (assumptions, also in docs/providers.md):
- Base URL ``https://video.a2e.ai``; the account's API token as ``Authorization: Bearer``; the
  request's "language of the platform" as the ``x-lang`` header (default ``en-US``).
- Training status: ``GET /api/v1/userVideoTwin/{_id}`` answering the same record, whose
  ``current_status`` ends at ``completed`` or ``failed``; the finished avatar's id is the first
  ``_id`` of ``GET /api/v1/anchor/character_list?user_video_twin_id={_id}``.
- Continue training: ``POST /api/v1/userVideoTwin/continueTraining`` with ``{"_id": …}``.
- Rendering (A2E's convention: a video is always made from audio, text goes through its TTS
  first): ``POST /api/v1/video/send_tts`` with ``msg``, ``tts_id``, ``speechRate`` answering
  the audio URL in ``data``; then ``POST /api/v1/video/generate`` with ``title``,
  ``anchor_id``, ``anchor_type`` 1 (a custom avatar), ``audioSrc``; status from
  ``POST /api/v1/video/awsResult`` with ``{"_id": …}``, whose ``status`` ends at ``success``
  (``result`` is the video URL) or ``failed`` (``failed_message``).
- Image formats are not named: JPG, JPEG, PNG and WEBP are accepted. No script length is given.
- Error codes are not listed: a non-zero ``code`` is classed by its message.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputRejected
from .base import (
    AvatarRequest,
    Capabilities,
    Credentials,
    MediaRule,
    OptionSpec,
    ProviderEngine,
    ProviderTask,
    RenderRequest,
    Status,
    check_url,
    option,
)
from .http import ProviderHttp

BASE_URL = "https://video.a2e.ai"

_QUEUED = {"initialized", "sent", "pending", "queued", "waiting"}
_DONE = {"completed", "success", "succeeded", "done", "finished"}
_FAILED = {"failed", "fail", "error"}


class A2EEngine(ProviderEngine):
    name = "a2e"
    label = "A2E"
    credential_fields = ("api_key",)
    capabilities = Capabilities(
        avatar_video=MediaRule(
            "the training video", "source", formats=("mp4", "mov"), seconds=(10.0, 300.0),
            note="one face, 1/10–1/3 of the frame width, speaking normally; 720p or 1080p recommended, at most 4K",
        ),
        avatar_image=MediaRule(
            "the training image", "source", formats=("jpg", "jpeg", "png", "webp"), max_bytes=10 << 20,
            edge=(1, 4000), note="one frontal face (both ears visible), 1/10–1/3 of the image width",
        ),
        render_avatar_id=True,
        audio=MediaRule("the audio", "audio", note="by URL; the video follows the audio's length"),
        text_length=(1, None),
        avatar_options=(
            OptionSpec("language", "str", "The language of the A2E platform (x-lang), not the avatar's.",
                       default="en-US"),
            OptionSpec("image_short_edge", "int", "Image mode: the avatar's short edge in pixels.", default=640,
                       minimum=64, maximum=4000),
            OptionSpec("skip_preview", "bool",
                       "Skip the quick preview and continue training at once (costs 1 diamond).", default=False),
        ),
        render_options=(
            OptionSpec("language", "str", "The language of the A2E platform (x-lang).", default="en-US"),
        ),
        refusals=(
            "Renders need an avatar trained at A2E (its anchor id); footage cannot be sent per render.",
            ("No captions, output size, loop modes, segments or intervals without lip sync: the document "
             "offers none."),
        ),
    )

    def __init__(self, credentials: Mapping[str, str], *, base_url: str = BASE_URL, timeout=None, client=None,
                 probe_urls: bool = True):
        self._credentials = Credentials(self.label, credentials, self.credential_fields)
        self.base_url = base_url.rstrip("/")
        self.probe_urls = probe_urls
        self._http = ProviderHttp(self.label, self._credentials.secrets(), timeout=timeout, client=client)

    def _headers(self, language: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._credentials['api_key']}", "x-lang": language or "en-US",
                "Content-Type": "application/json"}

    # --- avatars ---------------------------------------------------------------------------
    def _check_avatar(self, request: AvatarRequest) -> None:
        source = request.source
        if request.kind == "video" and source.width and source.height and (
                max(source.width, source.height) > 3840 or min(source.width, source.height) > 2160):
            raise InputRejected(
                f"A2E takes training videos up to 4K (3840×2160); this one is {source.width}×{source.height}.",
                field="source", code="provider_resolution")
        if request.background_color is not None and request.background_image_url:
            raise InputRejected("A2E takes a background colour or a background image, not both.",
                                field="background", code="provider_background")
        if request.background_image_url:
            check_url(request.background_image_url, what="The background image's URL", field="background")
        if request.kind == "video" and request.options.get("image_short_edge") is not None:
            raise InputRejected("A2E's image short edge applies to image avatars only.",
                                field="image_short_edge", code="provider_option")

    def _start_avatar(self, request: AvatarRequest) -> ProviderTask:
        # Probing fetches our own URLs, so it happens here rather than in check_avatar, which
        # forms call and which must stay free of network I/O.
        if self.probe_urls:
            self._probe(request.source.url, "video/" if request.kind == "video" else "image/", "source")
            if request.background_image_url:
                self._probe(request.background_image_url, "image/", "background")
        specs = self.capabilities.avatar_options
        body: dict = {"name": request.name.strip(), "gender": request.gender}
        if request.kind == "video":
            body["video_url"] = request.source.url
        else:
            body["image_url"] = request.source.url
            edge = request.options.get("image_short_edge")
            if edge is not None:
                body["image_short_edge"] = edge
        if request.background_color is not None:
            r, g, b = request.background_color
            body["video_backgroud_color"] = f"rgb({r},{g},{b})"
        elif request.background_image_url:
            body["video_backgroud_image"] = request.background_image_url
        if request.options.get("skip_preview"):
            body["skipPreview"] = True
        language = option(request, "language", specs)
        data = self._call("POST", "/api/v1/userVideoTwin/startTraining", language, json=body)
        twin_id = str(data.get("_id") or "")
        if not twin_id:
            raise self._http.failure("no _id in the answer")
        return ProviderTask(self.name, "avatar", twin_id, {"kind": request.kind, "language": language})

    def continue_training(self, task: ProviderTask) -> ProviderTask:
        """A2E's "Continue Training" for a video avatar (1 diamond; about 2 hours)."""
        if task.data.get("kind") == "photo":
            raise InputRejected("A2E continues training for video avatars only.", field="source",
                                code="provider_continue")
        self._call("POST", "/api/v1/userVideoTwin/continueTraining", task.data.get("language"),
                   json={"_id": task.task_id})
        return task

    def avatar_status(self, task: ProviderTask) -> Status:
        language = task.data.get("language")
        data = self._call("GET", f"/api/v1/userVideoTwin/{task.task_id}", language)
        raw = str(data.get("current_status") or "")
        state = _state(raw)
        preview = data.get("image_result_url") or None
        if state == "failed":
            reason = self._http.scrub(str(data.get("failed_message") or data.get("message") or "").strip())
            return Status("failed", raw_status=raw, error="A2E could not train the avatar." + self._http.said(reason))
        if state != "succeeded":
            return Status(state, raw_status=raw, poster_url=preview)
        anchors = self._call("GET", "/api/v1/anchor/character_list", language,
                             params={"user_video_twin_id": task.task_id})
        items = anchors if isinstance(anchors, list) else anchors.get("list") or []
        anchor_id = next((str(item.get("_id")) for item in items if isinstance(item, dict) and item.get("_id")), "")
        if not anchor_id:
            return Status("running", raw_status=raw, note="Training finished; waiting for A2E to list the avatar.")
        return Status("succeeded", progress=1.0, avatar_id=anchor_id, raw_status=raw, poster_url=preview,
                      video_url=data.get("preview_result_url") or None)

    # --- renders ---------------------------------------------------------------------------
    def _check_render(self, request: RenderRequest) -> None:
        if request.text and not request.voice:
            raise InputRejected("A2E reads a script with one of its TTS voices; choose a voice.", field="voice",
                                code="provider_voice")

    def _start_render(self, request: RenderRequest) -> ProviderTask:
        language = option(request, "language", self.capabilities.render_options)
        if request.audio is not None:
            audio_url = request.audio.url
        else:
            spoken = self._call("POST", "/api/v1/video/send_tts", language, json={
                "msg": request.text, "tts_id": request.voice, "speechRate": request.speed})
            audio_url = spoken if isinstance(spoken, str) else str(spoken.get("url") or spoken.get("audioSrc") or "")
            if not audio_url:
                raise self._http.failure("its text-to-speech gave no audio")
        body = {"title": request.title or "Avatar Studio render", "anchor_id": request.avatar_id,
                "anchor_type": 1, "audioSrc": audio_url}
        data = self._call("POST", "/api/v1/video/generate", language, json=body)
        video_id = str(data.get("_id") or "")
        if not video_id:
            raise self._http.failure("no _id in the answer")
        return ProviderTask(self.name, "render", video_id, {"language": language, "audio_url": audio_url})

    def render_status(self, task: ProviderTask) -> Status:
        data = self._call("POST", "/api/v1/video/awsResult", task.data.get("language"), json={"_id": task.task_id})
        record = data[0] if isinstance(data, list) and data else data if isinstance(data, dict) else {}
        raw = str(record.get("status") or "")
        state = _state(raw)
        progress = _progress(record.get("process"))
        if state == "succeeded":
            url = record.get("result")
            if not url:
                return Status("failed", raw_status=raw, error="A2E finished without a video.")
            return Status("succeeded", progress=1.0, video_url=url, raw_status=raw)
        if state == "failed":
            reason = self._http.scrub(str(record.get("failed_message") or "").strip())
            return Status("failed", raw_status=raw, error="A2E could not make the video." + self._http.said(reason))
        return Status(state, progress=progress, raw_status=raw)

    # --- plumbing --------------------------------------------------------------------------
    def _call(self, method: str, path: str, language: str | None, **kwargs):
        response = self._http.request(method, self.base_url + path, headers=self._headers(language), **kwargs)
        answer = self._http.json(response)
        code = answer.get("code")
        if code not in (0, "0") or response.status_code >= 400:
            reason = self._http.scrub(str(answer.get("msg") or answer.get("message") or ""))
            raise self._http.classify(code if code is not None else response.status_code, reason)
        return answer.get("data") if answer.get("data") is not None else {}

    def _probe(self, url: str, expected: str, field: str) -> None:
        """Fetch the first byte the way A2E will: no redirects, and the Content-Type must say what it is."""
        try:
            with self._http.client.stream("GET", url, headers={"Range": "bytes=0-0"}, follow_redirects=False) as r:
                status, mime = r.status_code, r.headers.get("Content-Type", "")
        except Exception:  # noqa: BLE001 - any failure to fetch means A2E will fail too
            raise InputRejected(
                "A2E will fetch the file by URL, but the studio could not fetch it either; check the public "
                "media address (PUBLIC_BASE_URL).", field=field, code="provider_url_unreachable") from None
        if 300 <= status < 400:
            raise InputRejected("A2E does not follow redirects, and the file's URL redirects (HTTP "
                                f"{status}); give the final address.", field=field, code="provider_url_redirect")
        if status not in (200, 206):
            raise InputRejected(f"A2E will fetch the file by URL, but it answers HTTP {status}.", field=field,
                                code="provider_url_status")
        if not mime.lower().startswith(expected):
            raise InputRejected(
                f"A2E reads the file type from the URL's Content-Type header, which says "
                f"{mime.split(';')[0] or 'nothing'} instead of {expected}…; serve it with the right type.",
                field=field, code="provider_url_mime")


def _state(raw: str) -> str:
    word = raw.strip().lower()
    if word in _QUEUED:
        return "queued"
    if word in _DONE:
        return "succeeded"
    if word in _FAILED:
        return "failed"
    return "running"


def _progress(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(1.0, number / 100.0 if number > 1 else number))
