"""A fast lane in front of Django for the hot path: a user's segments, by the v1 and the seed GET.

Other services call these for every page view, and Django's middleware, URL resolving and
DRF's request cycle cost several times the query itself. This WSGI wrapper answers only the
plain success case of `GET /api/v1/users/{id}/segments/` and `GET /api/get_user_segments?user_id=N`:
a token the cache knows, a well-formed id, a registered user, no query-string or Accept
variations. It runs the same selector (one query; the token comes from the cache) and returns the same
status, headers and body as Django would. Anything else — a missing or unknown token, a
malformed id, an unknown user, a database error, other settings — goes to Django unchanged,
which answers it exactly as before.
"""

import json
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host

from segmenter.auth import token_cache, token_hash
from segmenter.fields import MAX_USER_ID
from segments.selectors import user_segment_slugs

V1_PATH = re.compile(r"/api/v1/users/([0-9]{1,19})/segments/")
SEED_PATH = "/api/get_user_segments"
SEED_QUERY = re.compile(r"user_id=([0-9]{1,19})")
PLAIN_ACCEPT = ("", "*/*", "application/json")


def hot_path(app):
    """Wrap Django's WSGI application with the fast lane."""

    def application(environ, start_response):
        answer = _answer(environ)
        if answer is None:
            return app(environ, start_response)
        headers, body = answer
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return application


def _answer(environ) -> tuple[list[tuple[str, str]], bytes] | None:
    """(headers, JSON body) for a request the fast lane may answer, else None."""
    if environ.get("REQUEST_METHOD") != "GET" or environ.get("CONTENT_LENGTH") not in (None, "", "0"):
        return None
    config = _config()
    if environ.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPT or config is None or not _host_allowed(environ, config):
        return None
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    match = V1_PATH.fullmatch(path) if not query else SEED_QUERY.fullmatch(query) if path == SEED_PATH else None
    if match is None or not 1 <= int(match.group(1)) <= MAX_USER_ID:
        return None
    user_id = int(match.group(1))
    _recycle_old_connection()
    try:
        slugs = user_segment_slugs(user_id) if _authenticated(environ, config) else None
    except Exception:  # noqa: BLE001 - Django answers the same request with its own error handling
        return None
    if slugs is None:
        return None
    if path == SEED_PATH:
        return config.seed_headers, _json({"segments": slugs, "user_id": user_id})
    return config.v1_headers, _json({"user_id": user_id, "segments": slugs})


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
    v1_headers: list[tuple[str, str]]
    seed_headers: list[tuple[str, str]]


_configs: list[_Config | None] = []


@receiver(setting_changed)
def _forget_config(**kwargs) -> None:
    _configs.clear()


def _config() -> _Config | None:
    """The settings the fast lane needs, read once; None when Django's middleware would add
    something request-dependent to the 200 (then Django answers every request)."""
    if not _configs:
        plain = not (
            settings.DEBUG
            or settings.SECURE_SSL_REDIRECT
            or settings.SECURE_HSTS_SECONDS
            or settings.USE_X_FORWARDED_HOST
            or settings.PREPEND_WWW
            or settings.DISALLOWED_USER_AGENTS
            or settings.FORCE_SCRIPT_NAME
        )
        config = _Config(
            allowed_hosts=list(settings.ALLOWED_HOSTS),
            auth=settings.SEGMENTER_AUTH,
            v1_headers=_headers("GET, PATCH, HEAD, OPTIONS"),
            seed_headers=_headers("GET, HEAD, OPTIONS"),
        )
        _configs.append(config if plain else None)
    return _configs[0]


def _host_allowed(environ, config: _Config) -> bool:
    domain, _ = split_domain_port(environ.get("HTTP_HOST", ""))
    return bool(domain) and validate_host(domain, config.allowed_hosts)


def _authenticated(environ, config: _Config) -> bool:
    if not config.auth:
        return True
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return False
    return token_cache.lookup(token_hash(token)) is not None


def _json(data: dict) -> bytes:
    # As DRF's JSONRenderer writes it (compact, UTF-8).
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _headers(allow: str) -> list[tuple[str, str]]:
    """The headers Django's middleware and DRF put on this 200 under the current settings."""
    headers = [("Content-Type", "application/json"), ("Allow", allow)]
    if settings.X_FRAME_OPTIONS:
        headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS.upper()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        values = [value.strip() for value in policy.split(",")] if isinstance(policy, str) else policy
        headers.append(("Referrer-Policy", ",".join(values)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers
