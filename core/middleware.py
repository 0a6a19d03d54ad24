import re
import time
from functools import cache
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.http.cookie import parse_cookie

from core import telemetry
from core.errors import problem_json_response


def body_refusal(path: str, content_length: str | None, transfer_encoding: str | None):
    """The 413 or 411 problem response refusing a request's body unread, else None; from its headers alone.

    On every path, a body over 1 MiB is refused, but on settings.LARGE_BODY_PATHS (imports), which take
    up to their own limit; and a chunked body, which carries no Content-Length. The ASGI entry
    (segmenter/asgi.py) asks the same question, and `large_body_refusal`, to leave refused bodies unread;
    BodyLimitMiddleware answers them.
    """
    length = body_length(content_length)
    limit = body_limit(path)
    if length > limit:
        return problem_json_response(
            413, "payload_too_large", "Payload too large", f"Request body is larger than {limit // 1048576} MiB."
        )
    if "chunked" in (transfer_encoding or "").lower():
        # Django reads no body without a Content-Length: refuse it rather than act on an empty one.
        return problem_json_response(
            411, "length_required", "Length required", "Send the body with a Content-Length header."
        )
    return None


def large_body_refusal(path: str, content_length: str | None, authorization: str | None, cookie: str | None):
    """For a body over 1 MiB (which only a large-body path takes), the 401 or 403 refusing a caller who may
    not send it, else None: on the API a writing token is needed, in the admin a staff session (503 while
    the database cannot tell).

    It reads the database (the token cache, the session), so it is asked only about such bodies.
    """
    if body_length(content_length) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    try:
        if path.startswith("/api/"):
            return _token_refusal(authorization or "")
        return _session_refusal(cookie or "")
    except DatabaseError:
        return problem_json_response(503, "service_unavailable", "Service unavailable", "The database is unavailable.")


def _token_refusal(authorization: str):
    from core.auth import bearer_token, token_cache, token_hash  # needs the models: asgi.py imports this module first

    if not settings.SEGMENTER_AUTH:
        return None
    token = bearer_token(authorization)
    client = token_cache.lookup(token_hash(token)) if token else None
    if client is None:
        response = problem_json_response(
            401, "not_authenticated", "Not authenticated", "A writing API token is required to send this body."
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    if client.read_only:
        return problem_json_response(403, "permission_denied", "Permission denied", "This API token is read-only.")
    return None


def _session_refusal(cookie: str):
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(
        parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME)
    )
    user = get_user(request)
    if user.is_active and user.is_staff:  # what the admin asks of every page (AdminSite.has_permission)
        return None
    return problem_json_response(
        403, "permission_denied", "Permission denied", "Sign in to the admin to upload a file over 1 MiB."
    )


def body_length(content_length: str | None) -> int:
    """The body's length as its Content-Length header gives it (0 when absent or malformed)."""
    try:
        return int(content_length or 0)
    except ValueError:
        return 0


def body_limit(path: str) -> int:
    """The largest request body taken on `path`, in bytes."""
    return next(
        (limit for pattern, limit in _large_body_paths() if pattern.match(path)), settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    )


@cache
def _large_body_paths() -> list[tuple[re.Pattern, int]]:
    return [(re.compile(pattern), limit) for pattern, limit in getattr(settings, "LARGE_BODY_PATHS", {}).items()]


class RequestTelemetryMiddleware:
    """Give every response an X-Request-ID, and count, time and log every request (core/telemetry.py).

    First in MIDDLEWARE, so that it sees every response the others make, and times them all.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        with telemetry.bound_id(telemetry.request_id(request.META)) as request_id:
            response = self.get_response(request)
            response[telemetry.REQUEST_ID_HEADER] = request_id
            match = request.resolver_match
            route = match.view_name if match else telemetry.UNMATCHED
            telemetry.request_done(
                route=route, method=request.method, status=response.status_code, started=started, path=request.path
            )
        return response


class BodyLimitMiddleware:
    """Refuse request bodies before anything reads them: over 1 MiB (413) but on the import paths, chunked
    (411) (`body_refusal`), large from a caller who may not send them (401, 403: `large_body_refusal`)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        refusal = body_refusal(request.path, meta.get("CONTENT_LENGTH"), meta.get("HTTP_TRANSFER_ENCODING"))
        refusal = refusal or large_body_refusal(
            request.path, meta.get("CONTENT_LENGTH"), meta.get("HTTP_AUTHORIZATION"), meta.get("HTTP_COOKIE")
        )
        return refusal or self.get_response(request)


class WriteRedirectMiddleware:
    """A permanent redirect of a write is a 308, not a 301: clients follow a 301 with a GET and no body.

    Django's own redirects are 301s: a path without its trailing slash (CommonMiddleware's
    APPEND_SLASH) and plain HTTP under SECURE_SSL_REDIRECT (SecurityMiddleware). A `POST
    /api/v1/segments` was answered with the segment list and created nothing; after a 308 the client
    repeats the same method and body. GET and HEAD keep their 301.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 301 and request.method not in ("GET", "HEAD"):
            response.status_code = HttpResponsePermanentRedirect.status_code_preserve_request
        return response


class HeadWithoutBodyMiddleware:
    """Answer HEAD as GET without the body, whatever server runs the app.

    The views answer HEAD with their GET handler; this drops what they wrote, so a keep-alive
    client never reads a HEAD's body as the start of the next response. The headers stay those of
    the GET (Content-Length included, as HTTP allows).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                response.streaming_content = []
            else:
                response.content = b""
        return response
