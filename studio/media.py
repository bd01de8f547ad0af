"""Serving local media (no S3) to the people allowed to see it, with byte ranges.

A key is authorised through the object it belongs to, never through its text: only a key in
the exact canonical form the server generates (`teams/<team>/<folder>/<uuid>/<name>.<ext>`)
is looked up, the object must be in that team and still hold that file, and the requester
must be a member of the object's team (or staff allowed to view that kind of object).
Anything else, including every encoding of `..` and malformed bytes, is a plain 404.
"""

import os
import re

from django.apps import apps
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from engine.media import content_type_for_name
from studio.models import Membership

CANONICAL_KEY = re.compile(
    r"^teams/(?P<team>[1-9][0-9]*)/(?P<folder>[a-z]+)/"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
    # a generated name, or — where storage found it taken — the same with Django's 7-character suffix
    r"[a-z0-9][a-z0-9_-]*(?:_[A-Za-z0-9]{7})?\.[a-z0-9]{1,5}$"
)
# Which model owns the keys under each folder; by label, so the project package does not
# import the apps built on top of it.
OWNER_MODELS = {"avatars": "avatars.Avatar", "renders": "renders.Render"}
RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def _authorised_owner_or_404(request: HttpRequest, key: str):
    match = CANONICAL_KEY.match(key)
    if not match or match["folder"] not in OWNER_MODELS:
        raise Http404()
    model = apps.get_model(OWNER_MODELS[match["folder"]])
    owner = model.objects.filter(pk=match["uuid"], team_id=int(match["team"])).first()
    if owner is None or key not in {f.name for f in owner.stored_files()}:
        raise Http404()
    is_member = Membership.objects.filter(user=request.user, team_id=owner.team_id).exists()
    staff_may_view = request.user.is_staff and request.user.has_perm(
        f"{model._meta.app_label}.view_{model._meta.model_name}"
    )
    if not (is_member or staff_may_view):
        raise Http404()
    return owner


@login_required
def media_file(request: HttpRequest, path: str) -> HttpResponse:
    """Serve a local media file with Range support (browsers need ranges to seek a <video>)."""
    owner = _authorised_owner_or_404(request, path)
    full = os.path.join(os.path.realpath(settings.MEDIA_ROOT), path)
    if not os.path.isfile(full):
        raise Http404()
    response = _ranged_file_response(request, full)
    if "download" in request.GET:
        name = owner.download_filename(path) if hasattr(owner, "download_filename") else os.path.basename(path)
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


def _ranged_file_response(request: HttpRequest, full: str) -> HttpResponse:
    size = os.path.getsize(full)
    content_type = content_type_for_name(full)
    range_header = RANGE_PATTERN.match(request.headers.get("Range", "").strip())
    if not range_header or range_header.groups() == ("", ""):
        response = FileResponse(open(full, "rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = range_header.groups()
    if first == "":  # suffix range: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    response = StreamingHttpResponse(
        _read_range(full, start, end - start + 1), status=206, content_type=content_type
    )
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


def _read_range(path: str, start: int, length: int):
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
