"""The API's pages in the studio (team owners manage keys) and the local-mode upload endpoint."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http.multipartparser import MultiPartParserError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from api import services, uploads
from api.errors import ApiError, error_body
from api.forms import ApiKeyForm
from api.models import ApiKey, Upload
from studio.access import require_editor, require_owner


@login_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    require_owner(request)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["name"][0])
        return redirect("team_settings")
    key, secret = services.api_key_create(team=request.team, user=request.user, name=form.cleaned_data["name"])
    # Shown on this answer only: the secret is never stored, so no later page can show it.
    return render(request, "api/api_key_created.html", {"key": key, "secret": secret})


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    require_owner(request)
    key = get_object_or_404(ApiKey, pk=key_id, team=request.team)
    services.api_key_revoke(key=key)
    messages.success(request, f"The key “{key.name}” was revoked; requests using it are refused from now on.")
    return redirect("team_settings")


def _error(error: ApiError) -> JsonResponse:
    response = JsonResponse(error_body(error.code, error.message, error.field), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


# The credential's URL is the authority here (like a presigned S3 POST), not an API key.
@csrf_exempt
@require_POST
def upload_receive(request: HttpRequest, upload_id) -> HttpResponse:
    """Local mode: take the file for one upload credential, streamed and capped at its kind's limit."""
    if not uploads.token_matches(upload_id, request.GET.get("token", "")):
        return _error(ApiError(403, "invalid_credential", "This upload URL is not valid; ask POST /uploads for a new one."))
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None:
        return _error(ApiError(404, "not_found", "This upload no longer exists; ask POST /uploads for a new one."))
    if upload.status != Upload.Status.PENDING:
        return _error(ApiError(409, "already_received", "A file was already received for this upload."))
    if upload.is_expired:
        return _error(ApiError(410, "upload_expired", "This upload credential expired; ask POST /uploads for a new one."))
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > upload.max_bytes + uploads.MULTIPART_SLACK:
        # Refused before a byte is read: the declared length already says it is too large.
        Upload.objects.filter(pk=upload.pk).delete()
        return _error(uploads.too_large(upload.kind, upload.max_bytes))
    handler = uploads.CappedUploadHandler(request, limit=upload.max_bytes)
    request.upload_handlers = [handler]
    try:
        files = request.FILES
    except MultiPartParserError:
        return _error(ApiError(400, "no_file", "Send the file as multipart/form-data in a part named “file”.", field="file"))
    try:
        uploads.upload_receive(upload=upload, handler=handler, files=files)
    except ApiError as error:
        return _error(error)
    return HttpResponse(status=204)


@login_required
@require_POST
def direct_upload_create(request: HttpRequest) -> HttpResponse:
    """S3 mode, the studio's own forms: a credential to send a file straight to the bucket (with
    a progress bar), so a multi-gigabyte video never passes through the web process. The form
    then names the upload by its ``file_id``."""
    require_editor(request)
    if not uploads.s3_mode():
        return _error(ApiError(404, "not_found", "Direct uploads are for S3 storage; post the file with the form."))
    try:
        upload, credential = uploads.upload_create(
            team=request.team, api_key=None, kind=request.POST.get("kind", ""),
            content_type=request.POST.get("content_type", ""), filename=request.POST.get("filename", ""),
            absolute_url=request.build_absolute_uri,
        )
    except ApiError as error:
        return _error(error)
    return JsonResponse({"file_id": str(upload.pk), "url": credential["url"], "fields": credential["fields"],
                         "max_bytes": credential["max_bytes"]})
