"""Domain errors and the one handler that turns every error into RFC 9457 problem+json."""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from procrastinate.exceptions import ConnectorException
from rest_framework import exceptions
from rest_framework.response import Response

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


class ValidationFailed(ServiceError):
    status, code, title = 400, "validation_error", "Invalid input"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        detail = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        super().__init__(detail, errors=errors)


class UserNotFound(ServiceError):
    status, code, title = 404, "user_not_found", "User not found"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"Unknown user: {user_id}", user_id=user_id)


class SegmentNotFound(ServiceError):
    status, code, title = 404, "segment_not_found", "Segment not found"

    def __init__(self, slugs: list[str]) -> None:
        slugs = sorted(set(slugs))
        super().__init__(f"Unknown segments: {', '.join(slugs)}", slugs=slugs)


class SegmentExists(ServiceError):
    status, code, title = 409, "segment_exists", "Segment exists"

    def __init__(self, slug: str) -> None:
        super().__init__(f"Segment already exists: {slug}", slug=slug)


class ReportNotWritten(ServiceError):
    status, code, title = 503, "report_not_written", "Report not written"


class ReportTooLarge(ServiceError):
    status, code, title = 413, "report_too_large", "Report too large"

    def __init__(self, max_rows: int) -> None:
        super().__init__(
            f"The report would have more than {max_rows} rows; ask for a shorter period.", max_rows=max_rows
        )


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body is larger than 1 MiB."
    default_code = "payload_too_large"


class MalformedJson(ServiceError):
    status, code, title = 400, "malformed_json", "Malformed JSON"


class BodyTooLarge(ServiceError):
    """A body over a limit found while reading it (PayloadTooLarge is the one refused unread)."""

    status, code, title = 413, "payload_too_large", "Payload too large"


class IdempotencyKeyReused(ServiceError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request; use a new key for a new request.", key=key
        )


class ServiceUnavailable(ServiceError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class ImportQueueFull(ServiceError):
    status, code, title = 503, "import_queue_full", "Import queue full"

    def __init__(self, *, max_bytes: int, retry_after: int) -> None:
        super().__init__(
            f"The imports waiting for the worker hold up to {max_bytes:,} bytes, and this one would pass that;"
            " retry later.",
            max_bytes=max_bytes,
        )
        self.headers = {"Retry-After": str(retry_after)}


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
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_messages(item) if isinstance(item, list | dict) else [str(item)])
        return out
    if isinstance(value, dict):
        return [f"{key}: {' '.join(_messages(item))}" for key, item in value.items()]
    return [str(value)]


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
    if isinstance(exc, ServiceError):
        return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        return problem_response(400, "validation_error", "Invalid input", detail, errors=errors)
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
