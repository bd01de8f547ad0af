"""One error shape for every API answer that is not a success:

    {"error": {"code": "script_too_short", "message": "<a sentence>", "field": "script"}}

The sentences are the web UI's (engine InputRejected, form errors), with the field renamed to
the API's name for it. A caller's mistake is always a 4xx; only our own faults are a 500.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from engine.errors import InputRejected

log = logging.getLogger(__name__)

# The web forms' and engine's field names, as the API calls them.
API_FIELD_NAMES = {
    "source": "file_id",
    "background_image": "background_image_file_id",
    "audio": "audio_file_id",
    "avatar": "avatar_id",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, field: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def api_field(name: str) -> str:
    return API_FIELD_NAMES.get(name, name)


def error_body(code: str, message: str, field: str = "") -> dict:
    return {"error": {"code": code, "message": message, "field": field or None}}


def error_response(api: NinjaAPI, request: HttpRequest, error: ApiError) -> HttpResponse:
    response = api.create_response(request, error_body(error.code, error.message, error.field), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def rejected(problem: InputRejected, *, status: int = 422) -> ApiError:
    return ApiError(status, problem.code or "invalid", str(problem), field=api_field(problem.field))


def _validation_sentence(error: dict) -> tuple[str, str]:
    """The field and a sentence for one of pydantic's errors."""
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path", "header")]
    field = ".".join(location)
    kind = error.get("type", "")
    if kind == "missing" and not field:
        return field, "Send a JSON object as the request body; /api/docs lists its fields."
    if kind == "missing":
        return field, f"Give {field}; it is required."
    if kind == "json_invalid" or not field:
        return field, "The request body is not valid JSON; send a JSON object."
    message = error.get("msg", "is not valid").removeprefix("Value error, ")
    return field, f"{field}: {message[0].lower()}{message[1:]}" if message else f"{field} is not valid."


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def api_error(request, exc: ApiError):
        return error_response(api, request, exc)

    @api.exception_handler(InputRejected)
    def input_rejected(request, exc: InputRejected):
        return error_response(api, request, rejected(exc))

    @api.exception_handler(ValidationError)
    def validation_error(request, exc: ValidationError):
        field, message = _validation_sentence(exc.errors[0] if exc.errors else {})
        return error_response(api, request, ApiError(422, "invalid_request", message, field=field))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        error = ApiError(
            401, "unauthenticated",
            "Send a valid, unrevoked API key as “Authorization: Bearer <key>”; team owners create keys on the team page.",
            headers={"WWW-Authenticate": "Bearer"},
        )
        return error_response(api, request, error)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        code = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        message = str(exc)
        if exc.status_code == 400 and message == "Cannot parse request body":  # ninja's words for bad JSON
            code, message = "invalid_json", "The request body is not valid JSON; send a JSON object."
        return error_response(api, request, ApiError(exc.status_code, code, message))

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return error_response(api, request, ApiError(404, "not_found", "There is nothing with that id in this key's team."))

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return error_response(api, request, ApiError(403, "forbidden", str(exc) or "This key may not do that."))

    @api.exception_handler(Exception)
    def server_error(request, exc):
        log.exception("API request failed: %s %s", request.method, request.path)
        error = ApiError(500, "server_error", "Something went wrong on our side; try again, and tell your admin if it keeps happening.")
        return error_response(api, request, error)
