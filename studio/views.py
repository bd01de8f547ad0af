import os
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from studio.access import require_owner
from studio.forms import MemberForm, SignupForm, TeamForm
from studio.middleware import SESSION_TEAM_KEY
from studio.models import Membership
from studio.services import membership_add, team_create, user_create
from studio.storage import content_type_for

RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$")
TEAM_KEY_PATTERN = re.compile(r"^teams/(\d+)/")
CHUNK = 256 * 1024


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("avatars:list")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_create(
            username=form.cleaned_data["username"],
            email=form.cleaned_data.get("email", ""),
            password=form.cleaned_data["password1"],
        )
        login(request, user)
        messages.success(request, "Welcome! Start by creating your first avatar.")
        return redirect("avatars:create")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    membership = get_object_or_404(Membership, user=request.user, team_id=request.POST.get("team"))
    request.session[SESSION_TEAM_KEY] = membership.team_id
    return redirect(request.POST.get("next") or "home")


@login_required
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = team_create(name=form.cleaned_data["name"], owner=request.user)
        request.session[SESSION_TEAM_KEY] = team.pk
        messages.success(request, f"Team “{team.name}” created; invite people from its settings.")
        return redirect("team_settings")
    return render(request, "studio/team_new.html", {"form": form})


@login_required
def team_settings(request: HttpRequest) -> HttpResponse:
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        require_owner(request)
        if form.is_valid():
            membership_add(
                team=request.team, user=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
            messages.success(request, f"{form.cleaned_data['username']} is now in the team.")
            return redirect("team_settings")
    members = request.team.memberships.select_related("user").order_by("user__username")
    return render(request, "studio/team_settings.html", {"form": form, "members": members})


@login_required
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    require_owner(request)
    membership = get_object_or_404(Membership, pk=membership_id, team=request.team)
    if membership.is_owner and request.team.memberships.filter(role="owner").count() == 1:
        messages.error(request, "A team needs at least one owner; make someone else owner first.")
    else:
        membership.delete()
        messages.success(request, f"{membership.user} was removed from the team.")
    return redirect("team_settings")


@login_required
def media_file(request: HttpRequest, path: str) -> HttpResponse:
    """Serve a local media file to members of the team that owns it, with Range support.

    Browsers need byte ranges to seek in <video>; Django's static serve has none.
    """
    match = TEAM_KEY_PATTERN.match(path)
    if not match or not Membership.objects.filter(user=request.user, team_id=match[1]).exists():
        raise Http404()
    full = os.path.realpath(os.path.join(settings.MEDIA_ROOT, path))
    if not full.startswith(os.path.realpath(settings.MEDIA_ROOT) + os.sep) or not os.path.isfile(full):
        raise Http404()
    size = os.path.getsize(full)
    content_type = content_type_for(full)
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
