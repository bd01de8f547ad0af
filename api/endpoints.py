"""The API's operations: thin, like the studio's views — check input, call the apps' services."""

from contextlib import ExitStack, contextmanager
from uuid import UUID

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from ninja import Router
from ninja.responses import Status

from api import remote
from api.auth import BearerKey, SignedFileLink, signed_file_path
from api.errors import ApiError, api_field
from api.idempotency import idempotent
from api.models import ApiKey, Upload
from api.schemas import (
    AvatarIn,
    AvatarList,
    AvatarOut,
    ErrorOut,
    RenderIn,
    RenderList,
    RenderOut,
    UploadCredential,
    UploadIn,
    UploadOut,
    VoiceList,
)
from api.uploads import s3_mode, upload_create, upload_opened
from avatars import services as avatar_services
from avatars.forms import AvatarForm
from avatars.models import Avatar
from engine import preflight, speech
from engine.errors import InputRejected
from renders import services as render_services
from providers.models import RemoteJob
from renders.forms import DEFAULT_VOICES, RenderForm
from renders.models import Render
from studio.media import _ranged_file_response
from studio.storage import download_url

router = Router()
# The 4xx answers this API gives, each in the one error shape.
ERRORS = {frozenset({400, 401, 403, 404, 405, 409, 410, 413, 422, 429}): ErrorOut}
# A result's links (in local mode) carry their own signature; the API key works as well.
FILE_AUTH = [SignedFileLink(), BearerKey()]
PAGE_LIMIT = 100


def _form_error(form, rechecks: dict | None = None) -> ApiError:
    """The form's first complaint, in the UI's words, as an API error.

    Forms keep only the engine's sentence; where the engine check behind a field is cheap to
    repeat (`rechecks`), running it again on the failure path recovers its code as well.
    """
    errors = form.errors.as_data()
    field = next((name for name in form.fields if name in errors), "__all__")
    problem = errors[field][0]
    message = problem.messages[0] if problem.messages else "This value is not valid."
    code = problem.code or "invalid"
    recheck = (rechecks or {}).get(field)
    if recheck is not None:
        try:
            recheck()
        except InputRejected as engine_problem:
            if str(engine_problem) == message and engine_problem.code:
                code = engine_problem.code
    return ApiError(422, code, message, field="" if field == "__all__" else api_field(field))


# ---- voices ------------------------------------------------------------------------------------


@router.get("/voices", response={200: VoiceList, **ERRORS}, tags=["voices"], summary="List the voices")
def voice_list(request: HttpRequest, language: str = ""):
    """Every voice a script can be spoken in; `language` filters by BCP 47 prefix (e.g. `en`, `fr-FR`)."""
    wanted = language.strip().lower()
    voices = [
        v for v in speech.list_voices()
        if not wanted or v.language.lower() == wanted or v.language.lower().startswith(wanted + "-")
    ]
    return {"items": [{"id": v.id, "name": v.name, "language": v.language, "gender": v.gender} for v in voices]}


# ---- uploads -----------------------------------------------------------------------------------


@router.post("/uploads", response={201: UploadCredential, **ERRORS}, tags=["uploads"], summary="Get an upload credential")
def upload_new(request: HttpRequest, response: HttpResponse, payload: UploadIn):
    """Step one of "get a credential → upload → name the file_id in a request".

    POST every entry of `fields` and then the file (as `file`) to `url` as multipart/form-data.
    The file_id works once, for this team only, and the credential expires at `expires_at`.
    """

    def create():
        upload, credential = upload_create(
            team=request.auth.team,
            api_key=request.auth,
            kind=payload.kind,
            content_type=payload.content_type,
            filename=payload.filename,
            absolute_url=request.build_absolute_uri,
        )
        return 201, {"file_id": upload.pk, "kind": upload.kind, **credential}

    return idempotent(request, response, create)


@router.get("/uploads/{file_id}", response={200: UploadOut, **ERRORS}, tags=["uploads"], summary="Look at an upload")
def upload_detail(request: HttpRequest, file_id: UUID):
    upload = get_object_or_404(Upload, pk=file_id, team=request.auth.team)
    return {"file_id": upload.pk, "kind": upload.kind, "status": upload.status, "size": upload.size,
            "expires_at": upload.expires_at}


@contextmanager
def _media(request: HttpRequest, *, file_id, url: str | None, kinds: tuple[str, ...], field: str, url_field: str):
    """The file a request names, by upload or by URL, opened locally; None if it names neither."""
    if file_id is not None and url:
        raise ApiError(422, "ambiguous_source", f"Give either {field} or {url_field}, not both.", field=url_field)
    if file_id is not None:
        with upload_opened(team=request.auth.team, file_id=file_id, kinds=kinds, field=field) as opened:
            yield opened
    elif url:
        with remote.fetched(url, kinds=kinds, field=url_field) as opened:
            yield opened
    else:
        yield None


# ---- avatars -----------------------------------------------------------------------------------


def avatar_out(request: HttpRequest, avatar: Avatar) -> dict:
    preflight = avatar.preflight or {}
    return {
        "id": avatar.pk,
        "name": avatar.name,
        "gender": avatar.gender,
        "kind": avatar.kind,
        "status": avatar.status,
        "stage": avatar.stage,
        "progress": avatar.progress,
        "error": avatar.error or None,
        "preflight": {
            "ok": preflight.get("ok"),
            "problems": [
                {"field": api_field(p.get("field", "")), "code": p.get("code", ""), "message": p.get("message", "")}
                for p in preflight.get("problems", [])
            ],
        },
        "warnings": avatar.warnings,
        "background": avatar.background,
        "background_colour": avatar.background_colour or None,
        "width": avatar.width,
        "height": avatar.height,
        "fps": avatar.fps,
        "duration": avatar.duration,
        "urls": {
            "preview": _file_url(request, avatar.preview, f"/api/v1/avatars/{avatar.pk}/files/preview"),
            "poster": _file_url(request, avatar.poster, f"/api/v1/avatars/{avatar.pk}/files/poster"),
        },
        "created_at": avatar.created_at,
        "finished_at": avatar.finished_at,
    }


def _file_url(request: HttpRequest, field, api_path: str, download_name: str = "") -> str | None:
    """Where a stored file can be fetched: a presigned URL in S3 mode, else our own endpoint."""
    if not field:
        return None
    if s3_mode():
        return download_url(field, download_name) if download_name else field.storage.url(field.name)
    return request.build_absolute_uri(signed_file_path(api_path))


@router.post("/avatars", response={201: AvatarOut, **ERRORS}, tags=["avatars"], summary="Create an avatar")
def avatar_create(request: HttpRequest, response: HttpResponse, payload: AvatarIn):
    """Make an avatar from a video or photo (`file_id`, `video_url` or `image_url`).

    The answer comes at once with status `uploaded`; checks and preparation run in the
    background. Poll GET /avatars/{id} until the status is `ready`, `rejected` (see
    `preflight.problems`) or `failed` (see `error`).
    """
    return idempotent(request, response, lambda: (201, avatar_out(request, _avatar_create(request, payload))))


def _avatar_create(request: HttpRequest, payload: AvatarIn) -> Avatar:
    team, key = request.auth.team, request.auth
    source_url = payload.video_url or payload.image_url
    if payload.video_url and payload.image_url:
        raise ApiError(422, "ambiguous_source", "Give either video_url or image_url, not both.", field="image_url")
    if payload.file_id is None and not source_url:
        raise ApiError(
            422, "missing_source",
            "Choose the video or photo to make the avatar from: a file_id from POST /uploads, or a video_url or image_url.",
            field="file_id",
        )
    has_image = payload.background_image_file_id is not None or bool(payload.background_image_url)
    if payload.background_colour and has_image:
        raise ApiError(
            422, "ambiguous_background", "Give either a background colour or a background image, not both.",
            field="background_colour",
        )
    background = (
        Avatar.Background.COLOUR if payload.background_colour
        else Avatar.Background.IMAGE if has_image
        else Avatar.Background.NONE
    )
    source_kinds = (
        (Upload.Kind.VIDEO,) if payload.video_url
        else (Upload.Kind.PHOTO,) if payload.image_url
        else (Upload.Kind.VIDEO, Upload.Kind.PHOTO)
    )
    with ExitStack() as files:
        source = files.enter_context(_media(
            request, file_id=payload.file_id, url=source_url, kinds=source_kinds, field="file_id",
            url_field="video_url" if payload.video_url else "image_url",
        ))
        image = files.enter_context(_media(
            request, file_id=payload.background_image_file_id, url=payload.background_image_url,
            kinds=(Upload.Kind.PHOTO,), field="background_image_file_id", url_field="background_image_url",
        ))
        reference = files.enter_context(_media(
            request, file_id=payload.reference_photo_file_id, url=payload.reference_photo_url,
            kinds=(Upload.Kind.PHOTO,), field="reference_photo_file_id", url_field="reference_photo_url",
        ))
        form = AvatarForm(
            data={
                "name": payload.name,
                "gender": payload.gender,
                "background": background,
                "background_colour": payload.background_colour or "",
                "consent": "on" if payload.consent else "",
            },
            files={"source": source, "background_image": image, "reference_photo": reference},
            team=team,
        )
        if not form.is_valid():
            rechecks = {}
            if source is not None:
                rechecks["source"] = lambda: preflight.source_kind(source.temporary_file_path(), name=source.name)
            if image is not None:
                rechecks["background_image"] = lambda: preflight.check_background_image(image.temporary_file_path())
            raise _form_error(form, rechecks)
        return avatar_services.avatar_create(team=team, user=key.created_by, **form.avatar_arguments())


@router.get("/avatars", response={200: AvatarList, **ERRORS}, tags=["avatars"], summary="List the team's avatars")
def avatar_list(request: HttpRequest, status: str = "", limit: int = 50, offset: int = 0):
    avatars = Avatar.objects.filter(team=request.auth.team).order_by("-created_at")
    if status:
        _check_choice("status", status, Avatar.Status.values)
        avatars = avatars.filter(status=status)
    page, total = _page(avatars, limit, offset)
    return {"items": [avatar_out(request, a) for a in page], "total": total}


@router.get("/avatars/{avatar_id}", response={200: AvatarOut, **ERRORS}, tags=["avatars"], summary="Get an avatar")
def avatar_detail(request: HttpRequest, avatar_id: UUID):
    return avatar_out(request, get_object_or_404(Avatar, pk=avatar_id, team=request.auth.team))


@router.delete("/avatars/{avatar_id}", response={204: None, **ERRORS}, tags=["avatars"], summary="Delete an avatar")
def avatar_delete(request: HttpRequest, avatar_id: UUID):
    """Deletes the avatar, its renders and every file they own."""
    avatar_services.avatar_delete(avatar=get_object_or_404(Avatar, pk=avatar_id, team=request.auth.team))
    return Status(204, None)


@router.get(
    "/avatars/{avatar_id}/files/{name}", response={200: None, 302: None, **ERRORS}, tags=["avatars"],
    summary="Download an avatar's preview or poster", auth=FILE_AUTH,
)
def avatar_file(request: HttpRequest, avatar_id: UUID, name: str):
    avatar = get_object_or_404(Avatar, pk=avatar_id, **_team_of(request))
    fields = {"preview": avatar.preview, "poster": avatar.poster}
    if name not in fields or not fields[name]:
        raise ApiError(404, "not_found", f"This avatar has no {name} (yet).")
    return _serve(request, fields[name])


# ---- renders -----------------------------------------------------------------------------------


def _engine_of(render: Render) -> str:
    job = RemoteJob.objects.filter(render=render).select_related("account").first()
    return "local" if job is None else str(job.account_id)


def render_out(request: HttpRequest, render: Render) -> dict:
    base = f"/api/v1/renders/{render.pk}/files"

    def named(field) -> str:
        return render.download_filename(field.name) if field else ""

    return {
        "id": render.pk,
        "avatar_id": render.avatar_id,
        "title": render.title,
        "driver": render.driver,
        "status": render.status,
        "stage": render.stage,
        "progress": render.progress,
        "eta_seconds": render.eta_seconds,
        "error": render.error or None,
        "voice": render.voice,
        "loop_mode": render.loop_mode,
        "preview": render.preview,
        "engine": _engine_of(render),
        "captions_source": render.captions_source or None,
        "warning": render.warning or None,
        "duration": render.duration,
        "width": render.width,
        "height": render.height,
        "size_bytes": render.size_bytes,
        "urls": {
            "video": _file_url(request, render.video, f"{base}/video", named(render.video)),
            "poster": _file_url(request, render.poster, f"{base}/poster"),
            "captions_srt": _file_url(request, render.captions_srt, f"{base}/captions.srt", named(render.captions_srt)),
            "captions_vtt": _file_url(request, render.captions_vtt, f"{base}/captions.vtt", named(render.captions_vtt)),
        },
        "created_at": render.created_at,
        "started_at": render.started_at,
        "finished_at": render.finished_at,
    }


@router.post("/renders", response={201: RenderOut, **ERRORS}, tags=["renders"], summary="Render a video")
def render_create(request: HttpRequest, response: HttpResponse, payload: RenderIn):
    """Lip-sync an avatar to a script (text to speech) or to a voice track.

    The answer comes at once with status `queued`. Poll GET /renders/{id}, or give a
    `callback_url` to be told when the render succeeds, fails or is cancelled.
    """
    return idempotent(request, response, lambda: (201, render_out(request, _render_create(request, payload))))


def _default_title(payload: RenderIn) -> str:
    if payload.script:
        words = " ".join(payload.script.replace("<", " <").split())
        words = " ".join(w for w in words.split() if not w.startswith("<") and not w.endswith(">"))
        if words:
            return words if len(words) <= 60 else words[:57].rsplit(" ", 1)[0] + "…"
    return "Voice track"


def _intervals_text(intervals) -> str:
    """[[1.5, 3.0]] as the form's "1.5-3" (plain decimals: the form reads no exponents)."""
    plain = lambda seconds: format(seconds, "f").rstrip("0").rstrip(".") or "0"  # noqa: E731
    return ", ".join(f"{plain(start)}-{plain(end)}" for start, end in intervals)


def _render_create(request: HttpRequest, payload: RenderIn) -> Render:
    team, key = request.auth.team, request.auth
    avatar = Avatar.objects.filter(pk=payload.avatar_id, team=team).first()
    if avatar is None:
        raise ApiError(404, "avatar_not_found", "There is no avatar with this avatar_id in this key's team.", field="avatar_id")
    if avatar.status != Avatar.Status.READY:
        raise ApiError(
            409, "avatar_not_ready",
            f"This avatar is {avatar.get_status_display().lower()}; only a ready avatar can be rendered.",
            field="avatar_id",
        )
    has_audio = payload.audio_file_id is not None or bool(payload.audio_url)
    if payload.script is not None and has_audio:
        raise ApiError(
            422, "ambiguous_driver", "Give either a script or a voice track (audio_file_id or audio_url), not both.",
            field="script",
        )
    if payload.script is None and not has_audio:
        raise ApiError(
            422, "missing_driver",
            "Give a script to speak, or a voice track (audio_file_id or audio_url) to lip-sync to.",
            field="script",
        )
    driver = Render.Driver.AUDIO if has_audio else Render.Driver.TEXT
    callback = remote.callback_checked(payload.callback_url) if payload.callback_url else None
    with _media(
        request, file_id=payload.audio_file_id, url=payload.audio_url, kinds=(Upload.Kind.AUDIO,),
        field="audio_file_id", url_field="audio_url",
    ) as audio:
        form = RenderForm(
            data={
                "avatar": str(avatar.pk),
                "title": payload.title or _default_title(payload),
                "driver": driver,
                "script": payload.script or "",
                "voice": payload.voice or (DEFAULT_VOICES[avatar.gender] if driver == Render.Driver.TEXT else ""),
                "speed": payload.speed,
                "volume": payload.volume,
                "loop_mode": payload.loop_mode,
                "segment_start": "" if payload.segment_start is None else payload.segment_start,
                "segment_end": "" if payload.segment_end is None else payload.segment_end,
                "disable_intervals": _intervals_text(payload.disable_intervals),
                "transcript": payload.transcript or "",
                "language": payload.language or "",
                "burn_captions": "on" if payload.burn_captions else "",
                "caption_position": payload.caption_position,
                "caption_size": payload.caption_size,
                "caption_look": payload.caption_look,
                "resolution": payload.resolution or "",
                "aspect": payload.aspect,
                "upscale": "on" if payload.upscale else "",
                "fps": payload.fps or "",
                "quality": payload.quality,
                "engine": payload.engine,
                **_provider_fields(payload),
            },
            files={"audio": audio} if audio is not None else {},
            team=team,
        )
        if not form.is_valid():
            rechecks = {"script": lambda: speech.validate_script(payload.script or "")}
            if audio is not None:
                rechecks["audio"] = lambda: speech.check_audio_driver(audio.temporary_file_path())
            raise _form_error(form, rechecks)
        # One transaction: the render is queued (on commit) only once its callback is saved too.
        with transaction.atomic():
            render = _render_create_with(
                form, team=team, user=key.created_by, preview=payload.preview, callback=callback
            )
    return render


def _provider_fields(payload: RenderIn) -> dict:
    """A provider's voice and options as the render form names them (``<provider>_<option>``)."""
    from engine.remote import PROVIDERS

    fields = {}
    for provider in PROVIDERS:
        if payload.provider_voice:
            fields[f"{provider}_voice"] = payload.provider_voice
        for name, value in payload.provider_options.items():
            fields[f"{provider}_{name}"] = ("on" if value else "") if isinstance(value, bool) else value
    return fields


def _render_create_with(form: RenderForm, *, team, user, preview: bool, callback: str | None) -> Render:
    render = render_services.render_create(team=team, user=user, preview=preview, **form.render_arguments())
    if callback is not None:
        remote.callback_register(render=render, url=callback)
    return render


@router.get("/renders", response={200: RenderList, **ERRORS}, tags=["renders"], summary="List the team's renders")
def render_list(request: HttpRequest, status: str = "", avatar_id: UUID | None = None, limit: int = 50, offset: int = 0):
    """Newest first; `status` filters by one status (queued, running, succeeded, failed, cancelled)."""
    renders = Render.objects.filter(team=request.auth.team)
    if status:
        _check_choice("status", status, Render.Status.values)
        renders = renders.filter(status=status)
    if avatar_id is not None:
        renders = renders.filter(avatar_id=avatar_id)
    page, total = _page(renders, limit, offset)
    return {"items": [render_out(request, r) for r in page], "total": total}


@router.get("/renders/{render_id}", response={200: RenderOut, **ERRORS}, tags=["renders"], summary="Get a render")
def render_detail(request: HttpRequest, render_id: UUID):
    return render_out(request, get_object_or_404(Render, pk=render_id, team=request.auth.team))


@router.post("/renders/{render_id}/cancel", response={200: RenderOut, **ERRORS}, tags=["renders"], summary="Cancel a render")
def render_cancel(request: HttpRequest, response: HttpResponse, render_id: UUID):
    def cancel():
        render = get_object_or_404(Render, pk=render_id, team=request.auth.team)
        if not render_services.render_cancel(render=render):
            raise ApiError(409, "already_finished", "This render has already finished.")
        render.refresh_from_db()
        return 200, render_out(request, render)

    return idempotent(request, response, cancel)


@router.get(
    "/renders/{render_id}/files/{name}", response={200: None, 302: None, **ERRORS}, tags=["renders"],
    summary="Download a render's video, poster or captions", auth=FILE_AUTH,
)
def render_file(request: HttpRequest, render_id: UUID, name: str):
    render = get_object_or_404(Render, pk=render_id, **_team_of(request))
    fields = {"video": render.video, "poster": render.poster, "captions.srt": render.captions_srt,
              "captions.vtt": render.captions_vtt}
    if name not in fields or not fields[name]:
        raise ApiError(404, "not_found", f"This render has no {name} (yet).")
    field = fields[name]
    download_name = render.download_filename(field.name) if name != "poster" else ""
    return _serve(request, field, download_name)


def _serve(request: HttpRequest, field, download_name: str = "") -> HttpResponse:
    if s3_mode():
        return HttpResponseRedirect(download_url(field, download_name) if download_name else field.storage.url(field.name))
    response = _ranged_file_response(request, field.path)
    if download_name:
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=download_name)
    return response


# ---- helpers -----------------------------------------------------------------------------------


def _team_of(request: HttpRequest) -> dict:
    """A key sees its team's files; a signed link was signed for exactly the path it opens."""
    return {"team": request.auth.team} if isinstance(request.auth, ApiKey) else {}


def _check_choice(field: str, value: str, choices) -> None:
    if value not in choices:
        raise ApiError(422, "invalid_request", f"{field} must be one of: {', '.join(choices)}.", field=field)


def _page(rows, limit: int, offset: int) -> tuple[list, int]:
    """(the rows of one page, how many rows there are in all)."""
    if not 1 <= limit <= PAGE_LIMIT:
        raise ApiError(422, "invalid_request", f"limit must be between 1 and {PAGE_LIMIT}.", field="limit")
    if offset < 0:
        raise ApiError(422, "invalid_request", "offset must be 0 or more.", field="offset")
    total = rows.count()
    # Past the end the page is empty; the database is never asked for an offset larger than
    # its integers hold (SQLite fails on one).
    return (list(rows[offset : offset + limit]) if offset < total else []), total
