from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from studio.access import require_owner
from studio.forms import MemberForm, SignupForm, TeamForm
from studio.middleware import SESSION_TEAM_KEY
from studio.models import Membership
from studio.services import membership_add, team_create, user_create


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
