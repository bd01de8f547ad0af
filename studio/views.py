import math
from datetime import timedelta

from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from studio import services
from studio.access import require_owner
from studio.forms import InvitationForm, RoleForm, SignupForm, TeamForm
from studio.middleware import SESSION_TEAM_KEY
from studio.models import Invitation, Membership
from studio.services import TeamNeedsAnOwner


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("avatars:list")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_create(
            username=form.cleaned_data["username"],
            email=form.cleaned_data.get("email", ""),
            password=form.cleaned_data["password1"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Start by creating your first avatar.")
        return redirect("avatars:create")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    membership = get_object_or_404(Membership, user=request.user, team_id=request.POST.get("team"))
    request.session[SESSION_TEAM_KEY] = membership.team_id
    return redirect(_local_url_or_home(request, request.POST.get("next", "")))


def _local_url_or_home(request: HttpRequest, url: str) -> str:
    """Only follow `next` within the studio: an off-site or script URL goes home instead."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return "home"


@login_required
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
        request.session[SESSION_TEAM_KEY] = team.pk
        messages.success(request, f"Team “{team.name}” created; invite people from its settings.")
        return redirect("team_settings")
    return render(request, "studio/team_new.html", {"form": form})


@login_required
def team_settings(request: HttpRequest) -> HttpResponse:
    if request.team is None:
        return redirect("team_new")
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        require_owner(request)
        if form.is_valid():
            invitation = services.invitation_create(
                team=request.team,
                invited_by=request.user,
                role=form.cleaned_data["role"],
                email=form.cleaned_data["email"],
                absolute_url=request.build_absolute_uri,
            )
            sent = " and emailed it" if invitation.email and settings.EMAIL_ENABLED else ""
            messages.success(request, f"Invitation created{sent}: share the link below; it works once, for 14 days.")
            return redirect("team_settings")
    members = request.team.memberships.select_related("user").order_by("user__username")
    invitations = [i for i in request.team.invitations.filter(accepted_at=None) if i.is_open]
    context = {"form": form, "members": members, "invitations": invitations, "roles": Membership.Role.choices}
    return render(request, "studio/team_settings.html", context, status=400 if form.errors else 200)


def _team_membership_or_404(request: HttpRequest, membership_id: int) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user", "team"), pk=membership_id, team=request.team)


@login_required
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    require_owner(request)
    membership = _team_membership_or_404(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the roles: owner, editor or viewer.")
        return redirect("team_settings")
    try:
        services.membership_change_role(membership=membership, role=form.cleaned_data["role"])
    except TeamNeedsAnOwner as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{membership.user} is now {membership.get_role_display().lower()}.")
    return redirect("team_settings")


@login_required
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Owners remove members; anyone may leave (remove themselves)."""
    membership = _team_membership_or_404(request, membership_id)
    leaving = membership.user_id == request.user.pk
    if not leaving:
        require_owner(request)
    elif membership.team.personal:
        messages.error(request, "Your personal team is yours for good; you can leave shared teams.")
        return redirect("team_settings")
    try:
        services.membership_remove(membership=membership)
    except TeamNeedsAnOwner as refusal:
        messages.error(request, str(refusal))
        return redirect("team_settings")
    if leaving:
        messages.success(request, f"You left “{membership.team.name}”.")
        return redirect("home")
    messages.success(request, f"{membership.user} was removed from the team.")
    return redirect("team_settings")


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    require_owner(request)
    invitation = get_object_or_404(Invitation, pk=invitation_id, team=request.team, accepted_at=None)
    services.invitation_revoke(invitation=invitation)
    messages.success(request, "The invitation was withdrawn; its link no longer works.")
    return redirect("team_settings")


@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = Invitation.objects.select_related("team", "invited_by").filter(token=token).first()
    if invitation is None or not invitation.is_open:
        return render(request, "studio/invitation.html", {"invitation": None}, status=404)
    if request.method == "POST":
        membership = services.invitation_accept(invitation=invitation, user=request.user)
        if membership is None:
            return render(request, "studio/invitation.html", {"invitation": None}, status=404)
        request.session[SESSION_TEAM_KEY] = membership.team_id
        messages.success(request, f"Welcome to “{membership.team.name}”.")
        return redirect("home")
    already = Membership.objects.filter(team=invitation.team, user=request.user).first()
    return render(request, "studio/invitation.html", {"invitation": invitation, "already": already})


def login_locked_out(request: HttpRequest, response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """What a locked-out login sees (django-axes calls this on the studio and admin logins)."""
    cool_off = get_cool_off(request) or timedelta(0)
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60))
    context = {"minutes": minutes, "failure_limit": get_failure_limit(request, credentials)}
    locked = render(request, "registration/locked_out.html", context, status=429)
    locked["Retry-After"] = str(int(cool_off.total_seconds()))
    return locked
