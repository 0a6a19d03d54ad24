import re
import time
from functools import cache, partial

from django.conf import settings
from django.http import HttpResponsePermanentRedirect
from django.middleware.common import CommonMiddleware

from core import telemetry
from core.errors import problem_json_response


def api_body_refusal(path: str, content_length: str | None, transfer_encoding: str | None):
    """The 413 or 411 problem response for an API request whose body is refused unread, else None.

    API bodies over 1 MiB are refused (over settings.API_LARGE_BODY_PATHS' limit on those paths),
    and chunked ones, which carry no Content-Length. The ASGI entry (segmenter/asgi.py) asks the
    same question to leave such bodies unread too.
    """
    if not path.startswith("/api/"):
        return None
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
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


def body_limit(path: str) -> int:
    """The largest request body the API takes on `path`, in bytes."""
    return next(
        (limit for pattern, limit in _large_body_paths() if pattern.match(path)), settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    )


@cache
def _large_body_paths() -> list[tuple[re.Pattern, int]]:
    return [(re.compile(pattern), limit) for pattern, limit in getattr(settings, "API_LARGE_BODY_PATHS", {}).items()]


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


class ApiBodyLimitMiddleware:
    """Refuse API request bodies over 1 MiB before anything reads them (413 problem+json), and chunked
    bodies (411)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        refusal = api_body_refusal(
            request.path, request.META.get("CONTENT_LENGTH"), request.META.get("HTTP_TRANSFER_ENCODING")
        )
        return refusal or self.get_response(request)


class MethodKeepingCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, whose redirects (a path without its trailing slash) answer 308, not 301.

    A client follows a 301 with a GET and no body, so a POST or PATCH to `/api/v1/segments` was answered
    with the segment list and created nothing; after a 308 the client repeats the same method and body.
    """

    response_redirect_class = partial(HttpResponsePermanentRedirect, preserve_request=True)


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
