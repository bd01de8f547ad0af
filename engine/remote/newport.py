"""NewportAI: ``talking_face`` lip-syncs a source video to an audio file, then we poll.

From the document (docs/providers/newportai.txt): ``POST https://api.newportai.com/api/async/
talking_face`` with ``Authorization: Bearer <key>`` and a JSON body ``srcVideoUrl``, ``audioUrl``
and ``videoParams`` (``video_width``/``video_height``, 0 keeps the source's; ``video_enhance``
0/1; optional ``fps``, absent for 25 or ``"original"``); the answer is ``{"code": 0,
"message": "success", "data": {"taskId": …}}``.

Where the document is silent (assumptions, also in docs/providers.md):
- The polling API is named but not shown. We follow the submit call's conventions: ``POST
  /api/getAsyncResult`` with ``{"taskId": …}``, the same envelope, and ``data.task.status``
  1 (queued), 2 (processing), 3 (succeeded), 4 (failed) with ``data.task.reason`` on failure and
  the result in ``data.videos[].videoUrl``.
- Error codes are not listed: a non-zero ``code`` is classed by its message (key/token →
  refused key; credit/balance → out of credits; url/video/audio/format/invalid → the input
  was refused), anything else is the provider's refusal in its own words.
- No media rules are stated, so only URL hygiene is checked before sending.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputRejected
from .base import (
    Capabilities,
    Credentials,
    MediaRule,
    OptionSpec,
    ProviderEngine,
    ProviderTask,
    RenderRequest,
    Status,
    option,
)
from .http import ProviderHttp

BASE_URL = "https://api.newportai.com"

_STATES = {1: "queued", 2: "running", 3: "succeeded", 4: "failed"}


class NewportAIEngine(ProviderEngine):
    name = "newportai"
    label = "NewportAI"
    credential_fields = ("api_key",)
    capabilities = Capabilities(
        render_video=MediaRule("the avatar video", "avatar", note="any video NewportAI can fetch by URL"),
        audio=MediaRule("the audio", "audio", note="the original audio, by URL"),
        output_size=True,
        render_options=(
            OptionSpec("enhance", "bool", "Sharpen faces in the result (video_enhance).", default=False),
            OptionSpec("original_fps", "bool",
                       "Keep the source's frame rate instead of 25 fps; billed at (fps / 25) credits a second.",
                       default=False),
        ),
        refusals=(
            "No avatar step: each render sends the avatar's footage (srcVideoUrl).",
            "Audio only: talking_face takes an audioUrl, so a script must become audio first.",
            "No photo avatars: the source must be a video.",
            "No captions, loop modes, segments or intervals without lip sync.",
        ),
    )

    def __init__(self, credentials: Mapping[str, str], *, base_url: str = BASE_URL, timeout=None, client=None):
        self._credentials = Credentials(self.label, credentials, self.credential_fields)
        self.base_url = base_url.rstrip("/")
        self._http = ProviderHttp(self.label, self._credentials.secrets(), timeout=timeout, client=client)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._credentials['api_key']}", "Content-Type": "application/json"}

    def _check_render(self, request: RenderRequest) -> None:
        for name, value in (("width", request.width), ("height", request.height)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InputRejected(f"NewportAI needs the output {name} as a whole number of pixels "
                                    "(0 keeps the source's).", field="size", code="provider_size_option")

    def _start_render(self, request: RenderRequest) -> ProviderTask:
        specs = self.capabilities.render_options
        params = {
            "video_width": request.width or 0,
            "video_height": request.height or 0,
            "video_enhance": 1 if option(request, "enhance", specs) else 0,
        }
        if option(request, "original_fps", specs):
            params["fps"] = "original"
        body = {"srcVideoUrl": request.avatar_source.url, "audioUrl": request.audio.url, "videoParams": params}
        data = self._call("/api/async/talking_face", body)
        task_id = str(data.get("taskId") or "")
        if not task_id:
            raise self._http.failure("no taskId in the answer")
        return ProviderTask(self.name, "render", task_id)

    def render_status(self, task: ProviderTask) -> Status:
        data = self._call("/api/getAsyncResult", {"taskId": task.task_id})
        info = data.get("task") or {}
        raw = info.get("status")
        state = _STATES.get(_int(raw), "running")
        if state == "succeeded":
            url = next((v.get("videoUrl") for v in data.get("videos") or [] if v.get("videoUrl")), None)
            if not url:
                return Status("failed", raw_status=str(raw), error="NewportAI finished without a video.")
            return Status("succeeded", progress=1.0, video_url=url, raw_status=str(raw))
        if state == "failed":
            reason = self._http.scrub(str(info.get("reason") or "").strip())
            error = "NewportAI could not make the video." + (f' It said: "{reason}".' if reason else "")
            return Status("failed", raw_status=str(raw), error=error)
        return Status(state, raw_status=str(raw))

    def _call(self, path: str, body: dict) -> dict:
        response = self._http.request("POST", self.base_url + path, json=body, headers=self._headers())
        answer = self._http.json(response)
        code = answer.get("code")
        if code not in (0, "0") or response.status_code >= 400:
            raise self._http.classify(code if code is not None else response.status_code,
                                      self._http.scrub(str(answer.get("message") or "")))
        return answer.get("data") or {}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
