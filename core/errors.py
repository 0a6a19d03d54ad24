"""Errors a client can act on (each app's own are in its errors.py) and the one handler that turns every error
into RFC 9457 problem+json."""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from procrastinate.exceptions import ConnectorException
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ServiceError(Exception):
    """A refusal a client can act on; carries its HTTP status, code and extra fields."""

    status = 400
    code = "bad_request"
    title = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, **extra) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def with_hints(self) -> "ServiceError":
        """This refusal as the handler sends it, asked once the request has failed: a subclass may return one
        that adds what only a read after the failed transaction finds, such as a near match of what was unknown."""
        return self


class ValidationFailed(ServiceError):
    status, code, title = 400, "validation_error", "Invalid input"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors_detail(errors), errors=errors)


def errors_detail(errors: dict[str, list[str]]) -> str:
    """The `detail` of a validation_error: each field's messages after its path (`add[1]: ...`), messages about
    the whole body (key `non_field_errors` in `errors`) alone."""
    return "; ".join(
        " ".join(messages) if field == api_settings.NON_FIELD_ERRORS_KEY else f"{field}: {' '.join(messages)}"
        for field, messages in errors.items()
    )


class UserNotFound(ServiceError):
    """Every app names users by their id (segments too, which never imports users): the refusal of an unknown one
    is shared here, as the id's field is (core/fields.py)."""

    status, code, title = 404, "user_not_found", "User not found"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"Unknown user: {user_id}", user_id=user_id)


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body is larger than 1 MiB."
    default_code = "payload_too_large"


class MalformedJson(ServiceError):
    status, code, title = 400, "malformed_json", "Malformed JSON"


class BodyTooLarge(ServiceError):
    """A body over a limit found while reading it (PayloadTooLarge is the one refused unread)."""

    status, code, title = 413, "payload_too_large", "Payload too large"


class ServiceUnavailable(ServiceError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


def problem(status: int, code: str, title: str, detail: str, **extra) -> dict:
    return {"status": status, "code": code, "title": title, "detail": detail, **extra}


def problem_response(status: int, code: str, title: str, detail: str, headers=None, **extra) -> Response:
    body = problem(status, code, title, detail, **extra)
    return Response(body, status=status, headers=headers, content_type=PROBLEM_JSON)


def problem_json_response(status: int, code: str, title: str, detail: str, **extra) -> JsonResponse:
    """The same body for plain Django views and handlers outside DRF."""
    response = JsonResponse(problem(status, code, title, detail, **extra), status=status)
    response["Content-Type"] = PROBLEM_JSON
    return response


def _flatten(detail) -> dict[str, list[str]]:
    """DRF's nested error detail as {field path: messages}: `add[1]` for the second item of `add`, `a.b` for
    field b of object a; errors about a whole object belong to its own path (the body's: `non_field_errors`)."""
    errors: dict[str, list[str]] = {}
    for path, message in _paths(detail, ""):
        errors.setdefault(path or api_settings.NON_FIELD_ERRORS_KEY, []).append(message)
    return errors


def _paths(detail, path: str):
    """(field path, message) of every message in a DRF error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _paths(value, _path_of(path, key))
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):  # a list of objects (many=True): one entry per item, {} if valid
                yield from _paths(item, f"{path}[{index}]")
            else:
                yield path, str(item)
    else:
        yield path, str(detail)


def _path_of(path: str, key) -> str:
    key = str(key)
    if key == api_settings.NON_FIELD_ERRORS_KEY:
        return path
    if key.isdigit():  # ListField and DictField name a bad item by its index
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# DRF exception class -> (code, title); the first match wins.
_DRF_CODES = [
    (exceptions.ParseError, "malformed_json", "Malformed JSON"),
    (exceptions.NotAuthenticated, "not_authenticated", "Not authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated", "Not authenticated"),
    (exceptions.PermissionDenied, "permission_denied", "Permission denied"),
    (exceptions.NotFound, "not_found", "Not found"),
    (exceptions.MethodNotAllowed, "method_not_allowed", "Method not allowed"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type", "Unsupported media type"),
    (exceptions.NotAcceptable, "not_acceptable", "Not acceptable"),
    (exceptions.Throttled, "throttled", "Too many requests"),
    (PayloadTooLarge, "payload_too_large", "Payload too large"),
]


def exception_handler(exc, context) -> Response:
    from rest_framework.renderers import JSONRenderer  # reads the settings: segmenter/asgi.py imports this module first

    request = context.get("request")
    if request is not None:
        # Problems are JSON whatever the view renders otherwise (the schema's YAML, Swagger UI's HTML page).
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
    return _problem_of(exc)


def _problem_of(exc) -> Response:
    if isinstance(exc, ServiceError):
        exc = exc.with_hints()
        return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        return problem_response(400, "validation_error", "Invalid input", errors_detail(errors), errors=errors)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(math.ceil(exc.wait))
        code, title = next(
            ((code, title) for cls, code, title in _DRF_CODES if isinstance(exc, cls)),
            (str(exc.default_code), "Error"),
        )
        return problem_response(exc.status_code, code, title, str(exc.detail), headers=headers)
    # The task queue's connector raises its own exception for a database error, such as when a request queues a job.
    if isinstance(exc, OperationalError | InterfaceError | ConnectorException):
        logger.warning("database unavailable: %s", exc.__cause__ or exc)
        return problem_response(503, "service_unavailable", "Service unavailable", "The database is unavailable.")
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
        return problem_response(
            503, "service_unavailable", "Service unavailable", "The request could not be stored; retry."
        )
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal_error", "Internal server error", "An unexpected error occurred.")
