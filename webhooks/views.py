from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from studio.access import require_owner
from webhooks import services


@login_required
@require_POST
def secret_rotate(request: HttpRequest) -> HttpResponse:
    require_owner(request)
    services.webhook_secret_rotate(team=request.team)
    messages.success(
        request,
        "New signing secret created. Webhooks are signed with both secrets for the next 24 hours; "
        "switch your receivers to the new one before then.",
    )
    return redirect("team_settings")
