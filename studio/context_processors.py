from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from studio.models import Membership


def teams(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "current_team": request.team,
        "current_membership": request.membership,
        "my_memberships": Membership.objects.filter(user=request.user).select_related("team"),
    }


def direct_uploads(request: HttpRequest) -> dict:
    """In S3 mode the upload forms send files straight to the bucket (api.views.direct_upload_create)."""
    if not settings.AWS_STORAGE_BUCKET_NAME:
        return {}
    return {"direct_upload_url": reverse("direct_upload_create")}
