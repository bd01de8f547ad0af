"""/api/v1/… (the operations), /api/docs (Swagger UI) and /api/openapi.json."""

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from ninja import NinjaAPI

from api import endpoints, views
from api.auth import BearerKey
from api.errors import error_body, install_error_handlers

api = NinjaAPI(
    title="Avatar Studio API",
    version="1",
    description=(
        "Everything the studio's pages do, for scripts and other systems. Authenticate with a team "
        "API key (`Authorization: Bearer <key>`; owners create keys on the team page). Every error "
        "answers `{\"error\": {\"code\", \"message\", \"field\"}}`, `message` being a sentence to act on. "
        "A POST with an `Idempotency-Key` header returns its first answer when repeated."
    ),
    auth=BearerKey(),
    urls_namespace="api",
)
install_error_handlers(api)
api.add_router("/v1", endpoints.router)


def unknown_path(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse(
        error_body("not_found", "There is no such API path; see /api/docs for the operations."), status=404
    )


urlpatterns = [
    path("team/api-keys/new/", views.api_key_create, name="api_key_create"),
    path("team/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("api/v1/uploads/<uuid:upload_id>/content", views.upload_receive, name="api_upload_receive"),
    path("uploads/direct/", views.direct_upload_create, name="direct_upload_create"),
    path("api/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", unknown_path),
]
