from django.http import HttpRequest

from studio.models import Membership


def teams(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "current_team": request.team,
        "current_membership": request.membership,
        "my_memberships": Membership.objects.filter(user=request.user).select_related("team"),
    }
