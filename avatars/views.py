from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from api.uploads import FormRefused, direct_uploads, report_direct_problems
from avatars import services
from avatars.forms import AvatarForm
from avatars.models import Avatar
from engine.errors import InputRejected
from studio.access import require_editor, team_object_or_404

# The detail page re-renders this partial every second until the avatar settles.
STATUS_PARTIAL = "avatars/avatar_detail.html#status"
# S3 mode: files the browser sent straight to the bucket, by form field and allowed kinds.
DIRECT_UPLOADS = {"source": ("video", "photo"), "background_image": ("photo",), "reference_photo": ("photo",)}


@login_required
def avatar_list(request: HttpRequest) -> HttpResponse:
    avatars = Avatar.objects.filter(team=request.team).order_by("-created_at")
    return render(request, "avatars/avatar_list.html", {"avatars": avatars})


@login_required
def avatar_create(request: HttpRequest) -> HttpResponse:
    require_editor(request)
    if request.method != "POST":
        return render(request, "avatars/avatar_create.html", {"form": AvatarForm(team=request.team)})
    try:
        with direct_uploads(request, DIRECT_UPLOADS) as (files, problems):
            # the upload handler says whether a file was too large once the post is parsed
            oversize = getattr(request, "oversize_upload", None)
            form = AvatarForm(request.POST, files, team=request.team, oversize_field=oversize)
            if form.is_valid() and not problems:
                try:
                    avatar = services.avatar_create(team=request.team, user=request.user, **form.avatar_arguments())
                except InputRejected as problem:
                    form.add_error(problem.field or None, str(problem))
                    raise FormRefused from problem
                return redirect("avatars:detail", avatar_id=avatar.pk)
            report_direct_problems(form, problems)
            raise FormRefused
    except FormRefused:
        pass
    return render(request, "avatars/avatar_create.html", {"form": form}, status=400)


@login_required
def avatar_detail(request: HttpRequest, avatar_id) -> HttpResponse:
    avatar = team_object_or_404(request, Avatar, avatar_id)
    context = {"avatar": avatar, "renders": avatar.renders.order_by("-created_at")[:12]}
    if request.htmx:
        response = render(request, STATUS_PARTIAL, context)
        if avatar.is_terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "avatars/avatar_detail.html", context)


@login_required
@require_POST
def avatar_retry(request: HttpRequest, avatar_id) -> HttpResponse:
    require_editor(request)
    avatar = team_object_or_404(request, Avatar, avatar_id)
    if not services.avatar_retry(avatar=avatar):
        messages.error(request, "Only an avatar whose preparation failed can be retried.")
    return redirect("avatars:detail", avatar_id=avatar.pk)


@login_required
@require_POST
def avatar_delete(request: HttpRequest, avatar_id) -> HttpResponse:
    require_editor(request)
    avatar = team_object_or_404(request, Avatar, avatar_id)
    services.avatar_delete(avatar=avatar)
    messages.success(request, f"Avatar “{avatar.name}” and its files were deleted.")
    return redirect("avatars:list")
