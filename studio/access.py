"""Who may see and change what. Every object lookup goes through the current team."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404


def team_object_or_404(request: HttpRequest, model, pk, **lookups):
    """The object if it belongs to the current team; another team's object is a 404."""
    if request.team is None:
        raise Http404("You are not in a team.")
    return get_object_or_404(model, pk=pk, team=request.team, **lookups)


def require_editor(request: HttpRequest) -> None:
    if request.membership is None or not request.membership.can_edit:
        raise PermissionDenied("Viewers can look but not create or change anything.")


def require_owner(request: HttpRequest) -> None:
    if request.membership is None or not request.membership.is_owner:
        raise PermissionDenied("Only the team's owners can do that.")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for login throttling, trusting only our own proxies.

    Each proxy appends the address it saw to X-Forwarded-For, so with N proxies of ours the
    client is the N-th entry from the right; anything further left is the client's own word.
    """
    if settings.TRUSTED_PROXY_COUNT > 0:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        if len(hops) >= settings.TRUSTED_PROXY_COUNT:
            return hops[-settings.TRUSTED_PROXY_COUNT]
    return request.META.get("REMOTE_ADDR")
