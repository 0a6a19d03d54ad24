"""A fast lane in front of Django for the hot path: a user's segments, read by the v1 and the seed
GET and changed by the v1 PATCH.

Other services call these for every page view, and Django's middleware, URL resolving and
DRF's request cycle cost several times the query itself. This WSGI wrapper answers only the
plain success case of `GET /api/v1/users/{id}/segments/`, `GET /api/get_user_segments?user_id=N`
and `PATCH /api/v1/users/{id}/segments/`: a token the cache knows (a writing one for the PATCH),
a well-formed id, a registered user, no query-string or Accept variations, and for the PATCH a
small JSON body of the plain shapes (slugs, or {"slug"} with an integer "ttl_seconds"). It runs
the same selector or service (one query each; the token comes from the cache) and returns the
same status, headers and body as Django would. Anything else — a missing or unknown token, a
malformed id or body, an unknown user or segment, a database error, other settings — goes to
Django unchanged, which answers it exactly as before: a PATCH that failed changed nothing, and
Django reads its body again.
"""

import io
import json
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host

from segmenter.auth import ANONYMOUS, Client, token_cache, token_hash
from segmenter.fields import MAX_SLUGS, MAX_USER_ID, SLUG_RE
from segmenter.parsers import loads
from segments.selectors import user_segment_slugs
from segments.services import AddItem, memberships_update

V1_PATH = re.compile(r"/api/v1/users/([0-9]{1,19})/segments/")
SEED_PATH = "/api/get_user_segments"
SEED_QUERY = re.compile(r"user_id=([0-9]{1,19})")
PLAIN_ACCEPT = ("", "*/*", "application/json")
MAX_PATCH_BODY = 65_536  # larger bodies go to Django, which takes up to 1 MiB
CONTENT_LENGTH = re.compile(r"[0-9]{1,6}")


def hot_path(app):
    """Wrap Django's WSGI application with the fast lane."""

    def application(environ, start_response):
        method = environ.get("REQUEST_METHOD")
        answer = _answer(environ) if method == "GET" else _patch_answer(environ) if method == "PATCH" else None
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
        slugs = user_segment_slugs(user_id) if _client(environ, config) is not None else None
    except Exception:  # noqa: BLE001 - Django answers the same request with its own error handling
        return None
    if slugs is None:
        return None
    if path == SEED_PATH:
        return config.seed_headers, _json({"segments": slugs, "user_id": user_id})
    return config.v1_headers, _json({"user_id": user_id, "segments": slugs})


def _patch_answer(environ) -> tuple[list[tuple[str, str]], bytes] | None:
    """(headers, JSON body) for a PATCH of a user's segments that the fast lane has applied, else None."""
    config = _config()
    if (
        config is None
        or environ.get("QUERY_STRING")
        or environ.get("CONTENT_TYPE") != "application/json"
        or environ.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPT
        or not _host_allowed(environ, config)
    ):
        return None
    match, length = V1_PATH.fullmatch(environ.get("PATH_INFO", "")), environ.get("CONTENT_LENGTH", "")
    if match is None or not 1 <= int(match.group(1)) <= MAX_USER_ID or not CONTENT_LENGTH.fullmatch(length):
        return None
    if not 0 < int(length) <= MAX_PATCH_BODY:
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)  # for Django, if it answers instead
    lists = _patch_lists(body)
    if lists is None:
        return None
    user_id = int(match.group(1))
    _recycle_old_connection()
    try:
        client = _client(environ, config)
        if client is None or client.read_only:
            return None
        change = memberships_update(user_id=user_id, add=lists[0], remove=lists[1], source="api", actor=client.name)
    except Exception:  # noqa: BLE001 - nothing changed; Django answers the same request with its own errors
        return None
    return config.v1_headers, _json(
        {
            "user_id": user_id,
            "added": change.added,
            "updated": change.updated,
            "removed": change.removed,
            "segments": change.segments,
        }
    )


def _patch_lists(body: bytes) -> tuple[list[AddItem], list[str]] | None:
    """The (add, remove) of a PATCH body in its plain shapes, or None for anything else."""
    try:
        data = loads(body.decode())  # UTF-8 only, as Django's parser; a key twice goes to Django's 400
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not set(data) <= {"add", "remove"}:
        return None
    add, remove = data.get("add", []), data.get("remove", [])
    if not isinstance(add, list) or not isinstance(remove, list) or len(add) > MAX_SLUGS or len(remove) > MAX_SLUGS:
        return None
    items = []
    for item in add:
        slug, ttl = item, None
        if isinstance(item, dict) and set(item) in ({"slug"}, {"slug", "ttl_seconds"}):
            slug, ttl = item["slug"], item.get("ttl_seconds")
        if not _is_slug(slug) or (ttl is not None and type(ttl) is not int):
            return None
        items.append(AddItem(slug=slug, ttl_seconds=ttl))
    if not all(_is_slug(slug) for slug in remove):
        return None
    return items, remove


def _is_slug(value) -> bool:
    return isinstance(value, str) and SLUG_RE.fullmatch(value) is not None


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


def _client(environ, config: _Config) -> Client | None:
    """Who calls, when the cache knows the token (or auth is off); None leaves the request to Django."""
    if not config.auth:
        return ANONYMOUS
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token_cache.lookup(token_hash(token))


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
