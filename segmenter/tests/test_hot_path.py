"""The WSGI fast lane answers the hot-path GETs exactly as Django does, and leaves everything else to Django."""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from segmenter import hot_path
from segmenter.wsgi import application
from segments.services import AddItem, memberships_update, segment_create
from users.services import user_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    """User 42 in two segments."""
    user_register(user_id=42, actor="t")
    for slug in ("B_SEG", "A_SEG"):
        segment_create(slug=slug, actor="t")
    memberships_update(
        user_id=42, add=[AddItem(slug="B_SEG"), AddItem(slug="A_SEG")], remove=[], source="api", actor="t"
    )
    return 42


def environ(path: str, token: str | None, **extra) -> dict:
    headers = {"HTTP_HOST": "localhost", **extra}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return RequestFactory().get(path, **headers).environ


def call(app, env: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app the way Django's test client does (no connection closing inside the test's transaction)."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = app(env, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], sorted(seen["headers"]), body


def both(path: str, token: str | None, **extra):
    """(the fast lane's answer or None, the service's response, Django's own response) for one request."""
    fast = hot_path._answer(environ(path, token, **extra))
    return fast, call(application, environ(path, token, **extra)), call(WSGIHandler(), environ(path, token, **extra))


@pytest.mark.parametrize("path", ["/api/v1/users/42/segments/", "/api/v1/users/042/segments/"])
def test_v1_get__fast_lane__same_response_as_django(member, token, path):
    fast, served, django = both(path, token)
    assert fast is not None
    assert served == django
    assert served[0] == "200 OK"
    assert served[2] == b'{"user_id":42,"segments":["A_SEG","B_SEG"]}'


def test_seed_get__fast_lane__same_response_as_django(member, read_only_token):
    fast, served, django = both("/api/get_user_segments?user_id=42", read_only_token, HTTP_ACCEPT="*/*")
    assert fast is not None
    assert served == django
    assert served[2] == b'{"segments":["A_SEG","B_SEG"],"user_id":42}'


@pytest.mark.parametrize(
    ("path", "use_token", "extra", "status"),
    [
        ("/api/v1/users/43/segments/", True, {}, "404 Not Found"),
        ("/api/v1/users/42/segments/", False, {}, "401 Unauthorized"),
        ("/api/v1/users/0/segments/", True, {}, "400 Bad Request"),
        ("/api/v1/users/9223372036854775808/segments/", True, {}, "400 Bad Request"),
        ("/api/v1/users/42/segments/", True, {"HTTP_ACCEPT": "text/html"}, "406 Not Acceptable"),
        ("/api/v1/users/42/segments/", True, {"HTTP_HOST": "evil.example"}, "400 Bad Request"),
        ("/api/v1/users/42/segments/?format=json", True, {}, "200 OK"),
        ("/api/get_user_segments?user_id=43", True, {}, "404 Not Found"),
        ("/api/get_user_segments?user_id=x", True, {}, "400 Bad Request"),
    ],
)
def test_other_requests__go_to_django__same_response(member, token, path, use_token, extra, status):
    fast, served, django = both(path, token if use_token else None, **extra)
    assert fast is None
    assert served == django
    assert served[0] == status


def test_unknown_token__goes_to_django__401(member, token):
    fast, served, django = both("/api/v1/users/42/segments/", token + "x")
    assert fast is None
    assert served == django
    assert served[0] == "401 Unauthorized"


def test_warm_get__one_query_per_request(member, token):
    call(application, environ("/api/v1/users/42/segments/", token))
    with CaptureQueriesContext(connection) as queries:
        status, _, _ = call(application, environ("/api/v1/users/42/segments/", token))
    assert status == "200 OK"
    assert len(queries) == 1


def test_debug_settings__fast_lane_off(member, token, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    assert hot_path._answer(environ("/api/v1/users/42/segments/", token)) is None
    settings.SECURE_HSTS_SECONDS = 0
    assert hot_path._answer(environ("/api/v1/users/42/segments/", token)) is not None
