from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import render
from django.utils.cache import patch_cache_control

from studio.models import Membership

SESSION_TEAM_KEY = "team_id"
TECHNICAL_404_TITLE = b"<title>Page not found at "  # how Django's DEBUG 404 page begins


class CurrentTeamMiddleware:
    """Attach the signed-in user's current team and membership to the request.

    The current team lives in the session; when it is missing or the user has left that
    team, fall back to the user's first team (their personal team sorts first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.membership = None
        request.team = None
        if request.user.is_authenticated:
            memberships = Membership.objects.filter(user=request.user).select_related("team")
            team_id = request.session.get(SESSION_TEAM_KEY)
            membership = None
            if team_id:
                membership = memberships.filter(team_id=team_id).first()
            if membership is None:
                membership = memberships.order_by("-team__personal", "team__name").first()
            if membership is not None:
                request.membership = membership
                request.team = membership.team
        return self.get_response(request)


class PrivateResponsesMiddleware:
    """What a signed-in person sees is theirs: no shared cache may keep it.

    Also sets the Permissions-Policy: the studio uses no camera, microphone or location.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if request.user.is_authenticated:
            patch_cache_control(response, private=True)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class StudioNotFoundMiddleware:
    """The studio's own 404 page, also under DEBUG (the default of `make run`).

    With DEBUG on, Django answers a 404 with its technical page listing every URL pattern;
    creators trying the studio locally should see the same page they would in production.
    Set DEBUG_TECHNICAL_404=1 to get Django's page back while developing.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and settings.DEBUG
            and not settings.DEBUG_TECHNICAL_404
            and not response.streaming
            and TECHNICAL_404_TITLE in response.content[:1000]
        ):
            return render(request, "404.html", status=404)
        return response
