"""A fast lane in front of Django for the hot path: a user's segments, read by the v1 and the seed
GET and changed by the v1 PATCH.

Other services call these for every page view, and Django's middleware, URL resolving and
DRF's request cycle cost several times the query itself. This WSGI wrapper answers only the
plain success case of `GET /api/v1/users/{id}/segments/`, `GET /api/get_user_segments?user_id=N`
(or with `{"user_id": N}` in a JSON body, as the older service's clients send it)
and `PATCH /api/v1/users/{id}/segments/`: a token the cache knows (a writing one for the PATCH),
a well-formed id, a registered user, no query-string or Accept variations, an allowed host, HTTPS
when SECURE_SSL_REDIRECT asks for it, and for the PATCH (the seed GET with a body) a JSON body of at
most 64 KiB that `MembershipsPatchSerializer` (`UserIdSerializer`) accepts and, when SEGMENTER_WRITE_RATE
is set, a count within it (counted once by core/throttles.py, which Django's throttle then reads if the
lane leaves the request to it).
It runs the same selector or service (one query each; the token comes from the cache) and returns
the same status, headers and body as Django would; the headers come from Django's own header
middleware, run once at start on a sample response. Anything
else (a missing or unknown token, a malformed id or body, an unknown user or segment, a database
error, plain HTTP under SECURE_SSL_REDIRECT) goes to Django unchanged, which answers it exactly as
before: a PATCH that failed changed nothing, and Django reads its body again. Each request that
falls through is logged at debug with the reason.

The lane knows the middleware in MIDDLEWARE and the security settings one by one (KNOWN_MIDDLEWARE,
KNOWN_SETTINGS). Any other one, or DEBUG and the settings in OFF_WHEN_SET, turns it off at start with
one warning naming them; `SEGMENTER_FAST_LANE=off` turns it off quietly.
"""

import io
import json
import logging
import re
import time
from dataclasses import dataclass

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import resolve

from core import replica, telemetry
from core.auth import ANONYMOUS, Client, bearer_token, token_cache, token_hash
from core.fields import MAX_USER_ID
from core.parsers import AnyContentTypeJSONParser, JSONParser
from core.throttles import WriteThrottle, request_rate_hit
from segmenter.seed_api import UserIdSerializer
from segments.selectors import user_segment_slugs
from segments.serializers import MembershipsChangeSerializer, MembershipsPatchSerializer
from segments.services import memberships_update

logger = logging.getLogger(__name__)

V1_PATH = re.compile(r"/api/v1/users/([0-9]{1,19})/segments/")
SEED_PATH = "/api/get_user_segments"
SAMPLE_PATH = {"v1": "/api/v1/users/1/segments/", "seed": SEED_PATH}  # where header middleware may look
SEED_QUERY = re.compile(r"user_id=([0-9]{1,19})")
PLAIN_ACCEPT = ("", "*/*", "application/json")
MAX_PATCH_BODY = 65_536  # larger bodies go to Django, which takes up to 1 MiB
CONTENT_LENGTH = re.compile(r"[0-9]{1,6}")

# The middleware the lane knows, and why a request it answers needs nothing more from each.
KNOWN_MIDDLEWARE = {
    "csp.middleware.CSPMiddleware": "its header is run at start",
    "axes.middleware.AxesMiddleware": "acts only on admin login attempts",
    "core.middleware.RequestTelemetryMiddleware": "the lane adds the same X-Request-ID and counts, times and "
    "logs its requests with the same core/telemetry.py functions",
    "core.middleware.HeadWithoutBodyMiddleware": "the lane answers GET and PATCH only; HEAD goes to Django",
    "core.middleware.WriteRedirectMiddleware": "acts only on redirects, which Django makes",
    "django.middleware.security.SecurityMiddleware": "its headers are run at start; plain HTTP under "
    "SECURE_SSL_REDIRECT goes to Django",
    "core.middleware.BodyLimitMiddleware": "the lane takes bodies of at most 64 KiB with a Content-Length",
    "whitenoise.middleware.WhiteNoiseMiddleware": "serves static files only",
    "django.contrib.sessions.middleware.SessionMiddleware": "API views never touch the session",
    "django.middleware.common.CommonMiddleware": "the lane's URLs resolve as given; PREPEND_WWW and "
    "DISALLOWED_USER_AGENTS turn it off",
    "django.middleware.csrf.CsrfViewMiddleware": "API views are CSRF-exempt (token authentication)",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "API views never read request.user's session",
    "django.contrib.messages.middleware.MessageMiddleware": "API views add no messages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "its header is run at start",
}
HEADER_MIDDLEWARE = {
    "django.middleware.security.SecurityMiddleware": SecurityMiddleware,
    "csp.middleware.CSPMiddleware": CSPMiddleware,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": XFrameOptionsMiddleware,
}
# Security settings (every name with these prefixes) the lane knows, and what it does with each.
SECURITY_PREFIXES = ("SECURE_", "CSP", "CONTENT_SECURITY_POLICY", "PERMISSIONS_POLICY", "X_FRAME_OPTIONS")
KNOWN_SETTINGS = {
    "SECURE_CONTENT_TYPE_NOSNIFF": "a header of SecurityMiddleware",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY": "a header of SecurityMiddleware",
    "SECURE_HSTS_SECONDS": "a header of SecurityMiddleware, on HTTPS requests",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "a header of SecurityMiddleware, on HTTPS requests",
    "SECURE_HSTS_PRELOAD": "a header of SecurityMiddleware, on HTTPS requests",
    "SECURE_REFERRER_POLICY": "a header of SecurityMiddleware",
    "SECURE_PROXY_SSL_HEADER": "whether a request is HTTPS, read by Django's request.is_secure()",
    "SECURE_SSL_REDIRECT": "plain HTTP goes to Django, which redirects",
    "SECURE_SSL_HOST": "only the redirect, which Django does",
    "SECURE_REDIRECT_EXEMPT": "only the redirect, which Django does",
    "X_FRAME_OPTIONS": "the header of XFrameOptionsMiddleware",
    "CONTENT_SECURITY_POLICY": "the header of CSPMiddleware, run at start for the lane's paths",
}
# Settings that make Django do more for every request when set: the lane is off while any is.
OFF_WHEN_SET = ("DEBUG", "USE_X_FORWARDED_HOST", "PREPEND_WWW", "DISALLOWED_USER_AGENTS", "FORCE_SCRIPT_NAME")

_PATCH_BODY = MembershipsPatchSerializer()  # validates without state, so one instance serves every thread
_CHANGE = MembershipsChangeSerializer()
_SEED_BODY = UserIdSerializer()

Answer = tuple[list[tuple[str, str]], bytes]


def hot_path(app):
    """Wrap Django's WSGI application with the fast lane."""
    _config()  # at start: the warning, if the lane is off

    def application(environ, start_response):
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD")
        with telemetry.bound_id(telemetry.request_id(environ)) as request_id:  # Django keeps the same id
            answer = _answer(environ) if method == "GET" else _patch_answer(environ) if method == "PATCH" else None
            if answer is None:
                return app(environ, start_response)
            headers, body = answer
            start_response(
                "200 OK", [*headers, ("Content-Length", str(len(body))), (telemetry.REQUEST_ID_HEADER, request_id)]
            )
            path = environ.get("PATH_INFO", "")
            route = _config().routes["seed" if path == SEED_PATH else "v1"]
            telemetry.request_done(route=route, method=method, status=200, started=started, path=path)
        return [body]

    return application


def _answer(environ) -> Answer | None:
    """(headers, JSON body) for a GET the fast lane may answer, else None (logged at debug)."""
    return _logged(environ, _get(environ))


def _patch_answer(environ) -> Answer | None:
    """(headers, JSON body) for a PATCH of a user's segments that the fast lane has applied, else None."""
    return _logged(environ, _patch(environ))


def _logged(environ, result: Answer | str) -> Answer | None:
    if isinstance(result, str):
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        logger.debug("fast lane: %s %s goes to Django: %s", method, path, result)
        return None
    return result


def _get(environ) -> Answer | str:
    config = _config()
    if config is None:
        return "the fast lane is off"
    if environ.get("REQUEST_METHOD") != "GET":
        return "not a GET"
    if "HTTP_TRANSFER_ENCODING" in environ:
        return "a chunked body: Django answers 411"
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    length = environ.get("CONTENT_LENGTH") or "0"
    if length != "0":  # the seed API's GET with {"user_id": N} in a JSON body, as the older service's clients call it
        if path != SEED_PATH or query:
            return "a GET with a body other than the seed API's"
        if not CONTENT_LENGTH.fullmatch(length) or int(length) > MAX_PATCH_BODY:
            return f"not a Content-Length of 1 to {MAX_PATCH_BODY} bytes"
        match = None
    else:
        match = V1_PATH.fullmatch(path) if not query else SEED_QUERY.fullmatch(query) if path == SEED_PATH else None
        if match is None:
            return "not a fast-lane URL"
        if not 1 <= int(match.group(1)) <= MAX_USER_ID:
            return "a user id out of range"
    if environ.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPT:
        return "an Accept header other than JSON"
    headers = _headers_for(environ, config, "seed" if path == SEED_PATH else "v1")
    if isinstance(headers, str):
        return headers
    _recycle_old_connection()
    try:
        client = _client(environ, config)  # before a body: no body is read for a caller Django refuses
        if isinstance(client, str):
            return client
        user_id = int(match.group(1)) if match else _seed_body_user_id(environ, int(length))
        if isinstance(user_id, str):
            return user_id
        slugs = replica.read(lambda alias: user_segment_slugs(user_id, using=alias))
    except Exception as exc:  # noqa: BLE001 - Django answers the same request with its own error handling
        return f"the database failed ({type(exc).__name__})"
    if slugs is None:
        return "an unknown user"
    if path == SEED_PATH:
        return headers, _json({"segments": slugs, "user_id": user_id})
    return headers, _json({"user_id": user_id, "segments": slugs})


def _seed_body_user_id(environ, length: int) -> int | str:
    """The user id of a seed GET's JSON body, read with the view's parser and serializer; or why Django answers."""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # for Django, if it answers instead
    try:
        return _SEED_BODY.run_validation(AnyContentTypeJSONParser().parse(io.BytesIO(body)))["user_id"]
    except Exception as exc:  # noqa: BLE001 - the view runs the same parser and serializer and answers it
        return f"a body Django refuses ({type(exc).__name__})"


def _patch(environ) -> Answer | str:
    config = _config()
    if config is None:
        return "the fast lane is off"
    match = V1_PATH.fullmatch(environ.get("PATH_INFO", ""))
    if match is None or environ.get("QUERY_STRING"):
        return "not a fast-lane URL"
    if "HTTP_TRANSFER_ENCODING" in environ:
        return "a chunked body: Django answers 411"
    if environ.get("CONTENT_TYPE") != "application/json" or environ.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPT:
        return "a Content-Type or Accept header other than JSON"
    length = environ.get("CONTENT_LENGTH", "")
    if not CONTENT_LENGTH.fullmatch(length) or not 0 < int(length) <= MAX_PATCH_BODY:
        return f"not a Content-Length of 1 to {MAX_PATCH_BODY} bytes"
    user_id = int(match.group(1))
    if not 1 <= user_id <= MAX_USER_ID:
        return "a user id out of range"
    headers = _headers_for(environ, config, "v1")
    if isinstance(headers, str):
        return headers
    _recycle_old_connection()
    try:
        client = _client(environ, config)  # before the body: no body is read for a caller Django refuses
    except Exception as exc:  # noqa: BLE001 - Django answers the same request with its own error handling
        return f"the database failed ({type(exc).__name__})"
    if isinstance(client, str):
        return client
    if client.read_only:
        return "a read-only token"
    if settings.SEGMENTER_WRITE_RATE is not None:  # counted as Django would, after the token's checks
        try:
            refused = _write_rate_hit(environ, client)
        except Exception as exc:  # noqa: BLE001 - Django answers the same request with its own error handling
            return f"the database failed ({type(exc).__name__})"
        if refused:
            return "over SEGMENTER_WRITE_RATE: Django answers 429 with this count"
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)  # for Django, if it answers instead
    try:
        data = _PATCH_BODY.run_validation(JSONParser().parse(io.BytesIO(body)))
    except Exception as exc:  # noqa: BLE001 - the view runs the same parser and serializer and answers it
        return f"a body Django refuses ({type(exc).__name__})"
    try:
        change = memberships_update(
            user_id=user_id, add=data["add"], remove=data["remove"], source="api", actor=client.name
        )
    except Exception as exc:  # noqa: BLE001 - nothing changed; Django answers the same request with its own errors
        return f"the service refused it ({type(exc).__name__})"
    return headers, _json(_CHANGE.to_representation(change))


def _write_rate_hit(environ, client: Client) -> bool:
    """Count the write against SEGMENTER_WRITE_RATE as WriteThrottle does (it reads this count if Django answers
    the request); True when refused."""
    request = HttpRequest()
    request.META = environ
    scope, rate = WriteThrottle.WRITES, settings.SEGMENTER_WRITE_RATE
    return request_rate_hit(scope=scope, rate=rate, client=client, request=request) is not None


def _recycle_old_connection() -> None:
    """Close the connection once it outlives CONN_MAX_AGE, as Django does at each request's start.

    Django's per-request health check (CONN_HEALTH_CHECKS) is a second round trip, so the
    fast lane skips it: a broken connection makes the query fail, and the request then goes
    to Django, whose request cycle checks the connection and reconnects.
    """
    if connection.close_at is not None and time.monotonic() >= connection.close_at:
        connection.close()


@dataclass(frozen=True)
class _Config:
    allowed_hosts: list[str]
    auth: bool
    https_only: bool
    headers: dict[tuple[str, bool], list[tuple[str, str]]]  # by (v1 or seed, is the request HTTPS)
    routes: dict[str, str]  # v1 or seed: the URL name Django's metrics and logs give its requests


_configs: list[_Config | None] = []


@receiver(setting_changed)
def _forget_config(**kwargs) -> None:
    _configs.clear()


def _config() -> _Config | None:
    """The settings the fast lane needs, read once; None when it is off (then Django answers every request)."""
    if not _configs:
        _configs.append(_read_config())
    return _configs[0]


def _read_config() -> _Config | None:
    if not settings.SEGMENTER_FAST_LANE:
        logger.info("fast lane off (SEGMENTER_FAST_LANE=off): Django answers every request")
        return None
    unknown = unknown_settings()
    if unknown:
        logger.warning(
            "fast lane off: Django answers every request; segmenter/hot_path.py does not know %s", ", ".join(unknown)
        )
        return None
    _PATCH_BODY.fields  # noqa: B018 - build the fields once, before threads share them
    allow = {"v1": "GET, PATCH, HEAD", "seed": "GET, HEAD"}  # as Django writes Allow (core.views.served)
    return _Config(
        allowed_hosts=list(settings.ALLOWED_HOSTS),
        auth=settings.SEGMENTER_AUTH,
        https_only=settings.SECURE_SSL_REDIRECT,
        headers={
            (kind, secure): _headers(allow[kind], secure, SAMPLE_PATH[kind])
            for kind in allow
            for secure in (False, True)
        },
        routes={"v1": resolve("/api/v1/users/1/segments/").view_name, "seed": resolve(SEED_PATH).view_name},
    )


def unknown_settings() -> list[str]:
    """The middleware and security settings the lane was not taught about, and the OFF_WHEN_SET that are set."""
    found = [f"middleware {name}" for name in settings.MIDDLEWARE if name not in KNOWN_MIDDLEWARE]
    found += [
        f"setting {name}" for name in dir(settings) if name.startswith(SECURITY_PREFIXES) and name not in KNOWN_SETTINGS
    ]
    found += [f"{name}={getattr(settings, name)!r}" for name in OFF_WHEN_SET if getattr(settings, name)]
    return found


class _EnvironRequest(HttpRequest):
    """Just what Django's own `is_secure()` reads: META and the WSGI scheme."""

    def __init__(self, environ) -> None:  # no super(): the rest of a request is not needed
        self.META = environ

    def _get_scheme(self) -> str:
        return self.META.get("wsgi.url_scheme", "http")


def _headers_for(environ, config: _Config, kind: str) -> list[tuple[str, str]] | str:
    """The headers of the 200 for this request, or why it goes to Django."""
    domain, _ = split_domain_port(environ.get("HTTP_HOST", ""))
    if not domain or not validate_host(domain, config.allowed_hosts):
        return "a host not in ALLOWED_HOSTS"
    secure = _EnvironRequest(environ).is_secure()
    if config.https_only and not secure:
        return "plain HTTP under SECURE_SSL_REDIRECT"
    return config.headers[kind, secure]


def _headers(allow: str, secure: bool, path: str) -> list[tuple[str, str]]:
    """The headers of this 200 as DRF writes them and the header middleware adds to them, in its order."""
    response = HttpResponse(content_type="application/json")
    response["Allow"] = allow
    request = _EnvironRequest({"wsgi.url_scheme": "https" if secure else "http"})
    request.path_info = path
    for name in reversed(settings.MIDDLEWARE):
        if name in HEADER_MIDDLEWARE:
            response = HEADER_MIDDLEWARE[name](_unused).process_response(request, response)
    return list(response.items())


def _unused(request):
    raise AssertionError("only process_response runs")


def _client(environ, config: _Config) -> Client | str:
    """Who calls, when the cache knows the token (or auth is off), or why the request goes to Django."""
    if not config.auth:
        return ANONYMOUS
    token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
    if token is None:
        return "no 'Authorization: Bearer' token"
    return token_cache.lookup(token_hash(token)) or "an unknown token"


def _json(data: dict) -> bytes:
    # As DRF's JSONRenderer writes it (compact, UTF-8).
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
