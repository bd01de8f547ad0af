from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from avatars import services
from avatars.forms import AvatarForm
from avatars.models import Avatar
from engine.errors import InputRejected
from studio.access import require_editor, team_object_or_404

# The detail page re-renders this partial every second until the avatar settles.
STATUS_PARTIAL = "avatars/avatar_detail.html#status"


@login_required
def avatar_list(request: HttpRequest) -> HttpResponse:
    avatars = Avatar.objects.filter(team=request.team).order_by("-created_at")
    return render(request, "avatars/avatar_list.html", {"avatars": avatars})


@login_required
def avatar_create(request: HttpRequest) -> HttpResponse:
    require_editor(request)
    form = AvatarForm(
        request.POST or None,
        request.FILES or None,
        team=request.team,
        oversize_field=getattr(request, "oversize_upload", None),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            avatar = services.avatar_create(
                team=request.team,
                user=request.user,
                name=data["name"],
                gender=data["gender"],
                source=data["source"],
                background=data["background"],
                background_colour=data["background_colour"],
                background_image=data.get("background_image"),
                reference_photo=data.get("reference_photo"),
            )
        except InputRejected as problem:
            form.add_error(problem.field or None, str(problem))
        else:
            return redirect("avatars:detail", avatar_id=avatar.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "avatars/avatar_create.html", {"form": form}, status=status)


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
