"""TopView video avatar: upload credential → upload → submit → query.

From the document (docs/providers/topview.txt): get an upload credential (``uploadUrl`` and
``fileId``), upload the local file to ``uploadUrl``, submit the task (``taskId``), query it.
The avatar comes from an uploaded video (``avatarSourceFrom`` 0), a public avatar id (1), a
private avatar id (2) or an uploaded image (3); the speech from uploaded audio
(``audioSourceFrom`` 0) or TTS (1). ``modeType`` 0 is Avatar 1 (lips only; video input only),
1 is Avatar 2 (motion generated from the audio's rhythm, from the first frame of the video or
the image). ``isSave2CustomAiAvatar`` saves the result as a private avatar; a caption style
comes from the Caption List.

Where the document is silent (assumptions, also in docs/providers.md):
- Host ``https://api.topview.ai``; every call carries ``Authorization: Bearer <API key>`` and
  ``Topview-Uid: <uid>`` (the account's two credentials).
- ``GET /v1/upload/credential?format=<extension>`` (mp4, mov, png, jpg, jpeg, bmp, webp, mp3,
  wav, m4a) answering ``{"code": "200", "message": …, "result": {"uploadUrl", "fileId"}}``;
  the upload is a plain ``PUT`` of the bytes with a ``Content-Length`` and no credentials (the
  URL is presigned); a non-"200" ``code`` is an error in the ``message``.
- ``POST /v1/video_avatar/task/submit`` with ``videoFileId`` / ``aiAvatarId`` /
  ``imageFileId``, ``audioFileId`` or ``ttsText`` + ``voiceoverId``, ``modeType``,
  ``captionId``, ``isSave2CustomAiAvatar``; answer ``result.taskId``.
- ``GET /v1/video_avatar/task/query?taskId=…`` answering ``result.status`` (``success``,
  ``fail``, otherwise in progress), ``result.finishedVideoUrl``, ``result.errorMsg``, and the
  saved private avatar's id in ``result.aiAvatarId`` when one was asked for.
- No durations, sizes or script lengths are stated; only formats are checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import InputRejected
from .base import (
    Capabilities,
    Credentials,
    Media,
    MediaRule,
    OptionSpec,
    ProviderEngine,
    ProviderTask,
    RenderRequest,
    Status,
    option,
)
from .errors import ProviderAuthError, TransientProviderError
from .http import UPLOAD_TIMEOUT, ProviderHttp

BASE_URL = "https://api.topview.ai"
UPLOAD_CHUNK = 1 << 20

_QUEUED = {"init", "initial", "waiting", "pending", "queued", "submitted"}
_DONE = {"success", "succeeded", "finished", "done"}
_FAILED = {"fail", "failed", "error"}


class TopViewEngine(ProviderEngine):
    name = "topview"
    label = "TopView"
    credential_fields = ("api_key", "uid")
    capabilities = Capabilities(
        render_avatar_id=True,
        render_video=MediaRule("the avatar video", "avatar", formats=("mp4", "mov"), note="uploaded"),
        render_image=MediaRule("the avatar image", "avatar", formats=("png", "jpg", "jpeg", "bmp", "webp"),
                               note="uploaded; Avatar 2 only"),
        audio=MediaRule("the audio", "audio", formats=("mp3", "wav", "m4a"), note="uploaded"),
        text_length=(1, None),
        captions=True,
        uploads_files=True,
        render_options=(
            OptionSpec("mode", "choice", "Avatar 1 moves only the lips; Avatar 2 generates motion from the "
                       "audio's rhythm (needed for images).", choices=("avatar1", "avatar2")),
            OptionSpec("avatar_source", "choice", "Whose avatar id this is: a public one from TopView's catalogue "
                       "or the account's private one.", choices=("public", "private"), default="private"),
            OptionSpec("caption_id", "str", "Caption style id from TopView's Caption List."),
            OptionSpec("save_as_private_avatar", "bool", "Keep the result as a private TopView avatar.",
                       default=False),
        ),
        refusals=(
            "No separate avatar step: an avatar is saved from a render (save_as_private_avatar).",
            "Files go through TopView's upload flow, so the studio hands over local files, not URLs.",
            "Avatar 1 does not take an image.",
            "No output size, loop modes, segments or intervals without lip sync: the document offers none.",
        ),
    )

    def __init__(self, credentials: Mapping[str, str], *, base_url: str = BASE_URL, timeout=None, client=None):
        self._credentials = Credentials(self.label, credentials, self.credential_fields)
        self.base_url = base_url.rstrip("/")
        self._http = ProviderHttp(self.label, self._credentials.secrets(), timeout=timeout, client=client)

    def _no_avatar_step(self) -> str:
        return ("TopView has no separate avatar step: render with the footage and turn on "
                "save_as_private_avatar to keep it as a TopView avatar.")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._credentials['api_key']}", "Topview-Uid": self._credentials["uid"]}

    # --- renders ---------------------------------------------------------------------------
    def _check_render(self, request: RenderRequest) -> None:
        mode = request.options.get("mode")
        if request.avatar_source is not None and request.avatar_kind == "photo" and mode == "avatar1":
            raise InputRejected("TopView's Avatar 1 does not take an image; choose Avatar 2, which animates the "
                                "image from the audio's rhythm.", field="mode", code="provider_mode")
        if request.avatar_source is not None and request.options.get("avatar_source") is not None:
            raise InputRejected("avatar_source applies to a TopView avatar id, not to uploaded footage.",
                                field="avatar_source", code="provider_option")
        if request.captions and not request.options.get("caption_id"):
            raise InputRejected("TopView needs a caption style for captions; choose one from its Caption List.",
                                field="caption_id", code="provider_caption_style")
        if request.text and not request.voice:
            raise InputRejected("TopView reads a script with one of its voices; choose a voice.", field="voice",
                                code="provider_voice")
        for media in (request.avatar_source, request.audio):
            if media is not None and not Path(media.path).is_file():
                raise InputRejected(f"The file to upload to TopView is missing ({Path(media.path).name}).",
                                    field="avatar" if media is request.avatar_source else "audio",
                                    code="provider_upload_path")

    def _start_render(self, request: RenderRequest) -> ProviderTask:
        specs = self.capabilities.render_options
        body: dict = {}
        if request.avatar_id:
            public = option(request, "avatar_source", specs) == "public"
            body["avatarSourceFrom"] = 1 if public else 2
            body["aiAvatarId"] = request.avatar_id
        elif request.avatar_kind == "photo":
            body["avatarSourceFrom"] = 3
            body["imageFileId"] = self.upload(request.avatar_source)
        else:
            body["avatarSourceFrom"] = 0
            body["videoFileId"] = self.upload(request.avatar_source)
        if request.audio is not None:
            body["audioSourceFrom"] = 0
            body["audioFileId"] = self.upload(request.audio)
        else:
            body["audioSourceFrom"] = 1
            body["ttsText"] = request.text
            body["voiceoverId"] = request.voice
        mode = option(request, "mode", specs) or ("avatar2" if body["avatarSourceFrom"] == 3 else "avatar1")
        body["modeType"] = 1 if mode == "avatar2" else 0
        if request.captions:
            body["captionId"] = request.options["caption_id"]
        if option(request, "save_as_private_avatar", specs):
            body["isSave2CustomAiAvatar"] = True
        result = self._result(self._http.request("POST", self.base_url + "/v1/video_avatar/task/submit",
                                                 json=body, headers=self._headers()))
        task_id = str(result.get("taskId") or "")
        if not task_id:
            raise self._http.failure("no taskId in the answer")
        return ProviderTask(self.name, "render", task_id, {"mode": mode})

    def render_status(self, task: ProviderTask) -> Status:
        result = self._result(self._http.request("GET", self.base_url + "/v1/video_avatar/task/query",
                                                 params={"taskId": task.task_id}, headers=self._headers()))
        raw = str(result.get("status") or "")
        word = raw.lower()
        if word in _DONE:
            url = result.get("finishedVideoUrl")
            if not url:
                return Status("failed", raw_status=raw, error="TopView finished without a video.")
            return Status("succeeded", progress=1.0, video_url=url, raw_status=raw,
                          poster_url=result.get("coverUrl") or None,
                          avatar_id=str(result.get("aiAvatarId") or "") or None)
        if word in _FAILED:
            reason = self._http.scrub(str(result.get("errorMsg") or "").strip())
            return Status("failed", raw_status=raw, error="TopView could not make the video." + self._http.said(reason))
        return Status("queued" if word in _QUEUED else "running", raw_status=raw)

    # --- upload flow -----------------------------------------------------------------------
    def upload(self, media: Media) -> str:
        """Get a credential, stream the file to its presigned URL, return TopView's fileId."""
        path = Path(media.path)
        extension = (media.format or path.suffix.lstrip(".")).lower()
        credential = self._result(self._http.request("GET", self.base_url + "/v1/upload/credential",
                                                     params={"format": extension}, headers=self._headers()))
        upload_url, file_id = credential.get("uploadUrl"), credential.get("fileId")
        if not upload_url or not file_id:
            raise self._http.failure("no uploadUrl or fileId in the upload credential")
        size = os.path.getsize(path)
        try:
            response = self._http.request("PUT", upload_url, content=_chunks(path),
                                          headers={"Content-Length": str(size)}, timeout=UPLOAD_TIMEOUT)
        except ProviderAuthError:
            # A presigned URL that is refused has expired or was spent; a fresh credential fixes it.
            raise TransientProviderError("TopView's upload address was refused; the studio will ask for a new one.",
                                         provider=self.label, code="upload_refused") from None
        if not 200 <= response.status_code < 300:
            raise TransientProviderError(f"Uploading to TopView failed (HTTP {response.status_code}); the studio "
                                         "will try again.", provider=self.label, code=response.status_code)
        return str(file_id)

    def _result(self, response) -> dict:
        answer = self._http.json(response)
        code = str(answer.get("code", ""))
        if code != "200" or response.status_code >= 400:
            reason = self._http.scrub(str(answer.get("message") or ""))
            raise self._http.classify(code or response.status_code, reason)
        result = answer.get("result")
        return result if isinstance(result, dict) else {}


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK):
            yield chunk
