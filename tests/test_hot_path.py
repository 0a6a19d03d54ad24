"""The WSGI fast lane answers the hot-path GETs and PATCH exactly as Django does, and leaves the rest to Django."""

import json
import logging

import pytest
from django.conf import global_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from segmenter import hot_path
from segmenter.wsgi import application
from segments.models import HistoryEvent, Membership
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
    # Each response has an id of its own: compare the rest (test_telemetry.py checks the ids).
    headers = [(name, "<id>" if name == "X-Request-ID" else value) for name, value in seen["headers"]]
    return seen["status"], sorted(headers), body


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


def seed_body_environ(body: bytes, token: str | None, content_type: str = "application/json", **extra) -> dict:
    headers = {"HTTP_HOST": "localhost", **extra}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return RequestFactory().generic("GET", "/api/get_user_segments", body, content_type=content_type, **headers).environ


def both_seed_body(body: bytes, token: str | None, **extra):
    """As `both`, for the seed GET with a JSON body (the older service's clients send `{"user_id": N}`)."""
    fast = hot_path._answer(seed_body_environ(body, token, **extra))
    served = call(application, seed_body_environ(body, token, **extra))
    return fast, served, call(WSGIHandler(), seed_body_environ(body, token, **extra))


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded", ""])
def test_seed_get_with_json_body__fast_lane__same_response_as_django(member, read_only_token, content_type):
    fast, served, django = both_seed_body(b'{"user_id": 42}', read_only_token, content_type=content_type)
    assert fast is not None
    assert served == django
    assert served[2] == b'{"segments":["A_SEG","B_SEG"],"user_id":42}'


@pytest.mark.parametrize(
    ("body", "use_token", "content_type", "status"),
    [
        (b'{"user_id": 43}', True, "application/json", "404 Not Found"),
        (b'{"user_id": "x"}', True, "application/json", "400 Bad Request"),
        (b'{"user_id": 0}', True, "application/json", "400 Bad Request"),
        (b'{"user_id": 42', True, "application/json", "400 Bad Request"),
        (b"[42]", True, "application/json", "400 Bad Request"),
        (b'{"user_id": 42}', False, "application/json", "401 Unauthorized"),
    ],
)
def test_seed_get_with_other_bodies__go_to_django__same_response(member, token, body, use_token, content_type, status):
    fast, served, django = both_seed_body(body, token if use_token else None, content_type=content_type)
    assert fast is None
    assert served == django
    assert served[0] == status


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


def patch_environ(user_id: int, body, token: str | None, **extra) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_HOST": "localhost", **extra}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    content_type = headers.pop("content_type", "application/json")
    path = f"/api/v1/users/{user_id}/segments/"
    return RequestFactory().patch(path, raw, content_type=content_type, **headers).environ


@pytest.fixture
def twins(member):
    """Users 42 and 43 in the same segments, C_SEG unused."""
    user_register(user_id=43, actor="t")
    memberships_update(
        user_id=43, add=[AddItem(slug="B_SEG"), AddItem(slug="A_SEG")], remove=[], source="api", actor="t"
    )
    segment_create(slug="C_SEG", actor="t")
    return 42, 43


@pytest.mark.parametrize(
    "body",
    [
        {"add": ["C_SEG"], "remove": ["A_SEG"]},
        {"add": [{"slug": "C_SEG", "ttl_seconds": 3600}, {"slug": "B_SEG"}]},
        {"remove": ["A_SEG", "A_SEG", "C_SEG"]},
        {"add": []},
    ],
)
def test_v1_patch__fast_lane__same_response_and_changes_as_django(twins, token, body):
    status, headers, fast = call(application, patch_environ(42, body, token))
    django = call(WSGIHandler(), patch_environ(43, body, token))
    assert (status, headers) == django[:2]
    assert json.loads(fast) == {**json.loads(django[2]), "user_id": 42}
    assert fast.replace(b":42,", b":43,", 1) == django[2]
    events = {
        user_id: sorted(
            HistoryEvent.objects.filter(user_id=user_id, actor="tests").values_list("segment_slug", "operation")
        )
        for user_id in twins
    }
    assert events[42] == events[43]
    expiries = {
        user_id: sorted((m.segment.slug, m.expires_at is None) for m in Membership.objects.filter(user_id=user_id))
        for user_id in twins
    }
    assert expiries[42] == expiries[43]


def test_v1_patch__fast_lane_answers_it(twins, token):
    assert hot_path._patch_answer(patch_environ(42, {"add": ["C_SEG"]}, token)) is not None
    assert Membership.objects.filter(user_id=42, segment__slug="C_SEG").exists()


@pytest.mark.parametrize(
    ("body", "use_token", "extra", "status"),
    [
        ({"add": ["NOPE"]}, True, {}, "404 Not Found"),
        ({"add": ["C_SEG"], "remove": ["C_SEG"]}, True, {}, "400 Bad Request"),
        ({"add": [{"slug": "C_SEG", "ttl_seconds": 0}]}, True, {}, "400 Bad Request"),
        ({"add": [{"slug": "C_SEG", "ttl_seconds": "60"}]}, True, {}, "400 Bad Request"),  # JSON numbers only
        ({"add": [{"slug": "C_SEG", "expires_at": "2020-01-01T00:00:00Z"}]}, True, {}, "400 Bad Request"),
        ({"add": [{"slug": "C_SEG", "expires_at": "9999-01-01T00:00:00Z"}]}, True, {}, "400 Bad Request"),  # bound
        ({"add": [{"slug": "C_SEG", "expires_at": "9999-12-31T23:59:59-05:00"}]}, True, {}, "400 Bad Request"),
        ({"add": [{"slug": "C_SEG", "ttl_seconds": 10**30}]}, True, {}, "400 Bad Request"),
        ({"add": ["C_SEG"], "extra": 1}, True, {}, "400 Bad Request"),
        ({"add": "C_SEG"}, True, {}, "400 Bad Request"),
        ({"add": ["bad slug"]}, True, {}, "400 Bad Request"),
        (b'{"add": ["C_SEG"]', True, {}, "400 Bad Request"),
        ('{"add": ["C_SEG"]}'.encode("utf-16"), True, {}, "400 Bad Request"),
        ({"add": ["C_SEG"]}, False, {}, "401 Unauthorized"),
        ({"add": ["C_SEG"]}, True, {"content_type": "text/plain"}, "415 Unsupported Media Type"),
        ({"add": ["C_SEG"]}, True, {"HTTP_ACCEPT": "text/html"}, "406 Not Acceptable"),
        ({"add": ["C_SEG"]}, True, {"HTTP_HOST": "evil.example"}, "400 Bad Request"),
    ],
)
def test_other_patches__go_to_django__same_response(twins, token, body, use_token, extra, status):
    before = sorted(Membership.objects.values_list("user_id", "segment_id", "expires_at"))
    assert hot_path._patch_answer(patch_environ(42, body, token if use_token else None, **extra)) is None
    assert sorted(Membership.objects.values_list("user_id", "segment_id", "expires_at")) == before
    served = call(application, patch_environ(42, body, token if use_token else None, **extra))
    assert served[0] == status
    assert sorted(Membership.objects.values_list("user_id", "segment_id", "expires_at")) == before
    assert served == call(WSGIHandler(), patch_environ(42, body, token if use_token else None, **extra))


def test_patch_of_unknown_user__goes_to_django__404(twins, token):
    assert hot_path._patch_answer(patch_environ(44, {"add": ["C_SEG"]}, token)) is None
    assert call(application, patch_environ(44, {"add": ["C_SEG"]}, token))[0] == "404 Not Found"


def test_patch_with_read_only_token__goes_to_django__403(twins, read_only_token):
    assert hot_path._patch_answer(patch_environ(42, {"add": ["C_SEG"]}, read_only_token)) is None
    assert call(application, patch_environ(42, {"add": ["C_SEG"]}, read_only_token))[0] == "403 Forbidden"
    assert not Membership.objects.filter(user_id=42, segment__slug="C_SEG").exists()


@pytest.mark.django_db(transaction=True)
def test_warm_patch__one_query_per_request(twins, token):
    call(application, patch_environ(42, {"add": ["C_SEG"]}, token))
    with CaptureQueriesContext(connection) as queries:
        status, _, body = call(application, patch_environ(42, {"add": ["A_SEG"], "remove": ["C_SEG"]}, token))
    assert status == "200 OK"
    assert json.loads(body)["removed"] == ["C_SEG"]
    assert len(queries) == 1


@pytest.mark.parametrize("which", ["read_only", "unknown", "none"])
def test_patch_without_a_writing_token__fast_lane_leaves_the_body_unread(twins, read_only_token, which):
    token = {"read_only": read_only_token, "unknown": "sgm_unknown", "none": None}[which]
    env = patch_environ(42, {"add": ["C_SEG"]}, token)
    assert hot_path._patch_answer(env) is None
    assert not env["wsgi.input"].read_started


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_chunked_request__goes_to_django__411(twins, token, method):
    if method == "GET":
        env = environ("/api/v1/users/42/segments/", token, HTTP_TRANSFER_ENCODING="chunked")
        assert hot_path._answer(env) is None
    else:
        env = patch_environ(42, {"add": ["C_SEG"]}, token, HTTP_TRANSFER_ENCODING="chunked")
        assert hot_path._patch_answer(env) is None
    assert call(application, env)[0] == "411 Length Required"
    assert not Membership.objects.filter(user_id=42, segment__slug="C_SEG").exists()


HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}


def fresh(env: dict):
    """(the fast lane's answer or None, the service's response, Django's own) under the settings as they are now."""
    served = call(hot_path.hot_path(WSGIHandler()), dict(env))
    return hot_path._answer(dict(env)), served, call(WSGIHandler(), dict(env))


def header(response, name: str) -> str | None:
    return dict(response[1]).get(name)


@pytest.fixture(params=[(True, True), (False, False), (True, False)], ids=["subdomains+preload", "plain", "subdomains"])
def production(request, settings):
    """The HTTPS settings of a deployment behind a TLS-terminating proxy, HSTS with or without its options."""
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD = request.param
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


@pytest.mark.parametrize("path", ["/api/v1/users/42/segments/", "/api/get_user_segments?user_id=42"])
def test_get_behind_https_proxy__production_settings__same_as_django_with_hsts(member, token, production, path):
    fast, served, django = fresh(environ(path, token, **HTTPS))
    assert fast is not None
    assert served == django
    assert served[0] == "200 OK"
    expected = "max-age=31536000"
    expected += "; includeSubDomains" if production.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
    expected += "; preload" if production.SECURE_HSTS_PRELOAD else ""
    assert header(served, "Strict-Transport-Security") == expected


def test_patch_behind_https_proxy__production_settings__same_as_django_with_hsts(twins, token, production):
    assert hot_path._patch_answer(patch_environ(42, {"add": ["C_SEG"]}, token, **HTTPS)) is not None
    assert Membership.objects.filter(user_id=42, segment__slug="C_SEG").exists()
    assert call(WSGIHandler(), patch_environ(43, {"add": ["C_SEG"]}, token, **HTTPS))[0] == "200 OK"
    served = call(hot_path.hot_path(WSGIHandler()), patch_environ(42, {"remove": ["C_SEG"]}, token, **HTTPS))
    django = call(WSGIHandler(), patch_environ(43, {"remove": ["C_SEG"]}, token, **HTTPS))
    assert served[:2] == django[:2]
    assert served[2].replace(b":42,", b":43,", 1) == django[2]
    assert header(served, "Strict-Transport-Security").startswith("max-age=31536000")


@pytest.mark.parametrize("proto", [None, "http"])
def test_plain_http__ssl_redirect__goes_to_django__redirect(member, token, production, proto, caplog):
    extra = {"HTTP_X_FORWARDED_PROTO": proto} if proto else {}
    with caplog.at_level(logging.DEBUG, logger="segmenter.hot_path"):
        fast, served, django = fresh(environ("/api/v1/users/42/segments/", token, **extra))
    assert fast is None
    assert served == django
    assert served[0] == "301 Moved Permanently"
    assert header(served, "Location") == "https://localhost/api/v1/users/42/segments/"
    assert "goes to Django: plain HTTP under SECURE_SSL_REDIRECT" in caplog.text


def test_plain_http__hsts_without_redirect__fast_lane_answers_without_hsts(member, token, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    fast, served, django = fresh(environ("/api/v1/users/42/segments/", token))
    assert fast is not None
    assert served == django
    assert header(served, "Strict-Transport-Security") is None


def test_no_proxy_header_setting__forwarded_proto_ignored__https_by_wsgi_scheme(member, token, production):
    production.SECURE_PROXY_SSL_HEADER = None
    fast, served, django = fresh(environ("/api/v1/users/42/segments/", token, **HTTPS))
    assert (fast, served[0]) == (None, "301 Moved Permanently")
    assert served == django
    fast, served, django = fresh(environ("/api/v1/users/42/segments/", token, **{"wsgi.url_scheme": "https"}))
    assert fast is not None
    assert served == django
    assert header(served, "Strict-Transport-Security").startswith("max-age=31536000")


def test_project_settings__all_known_to_fast_lane(settings):
    """Fails when MIDDLEWARE or a security setting changes: teach segmenter/hot_path.py about it."""
    assert [name for name in settings.MIDDLEWARE if name not in hot_path.KNOWN_MIDDLEWARE] == []
    django_security = {name for name in dir(global_settings) if name.startswith(hot_path.SECURITY_PREFIXES)}
    project_security = {name for name in dir(settings) if name.startswith(hot_path.SECURITY_PREFIXES)}
    assert django_security | project_security <= set(hot_path.KNOWN_SETTINGS)
    assert hot_path.unknown_settings() == []


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("MIDDLEWARE", ["django.middleware.gzip.GZipMiddleware"], "middleware django.middleware.gzip.GZipMiddleware"),
        ("SECURE_CSP", {"default-src": ["'self'"]}, "setting SECURE_CSP"),
        ("CONTENT_SECURITY_POLICY_REPORT_ONLY", {"DIRECTIVES": {}}, "setting CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ("DEBUG", True, "DEBUG=True"),
        ("USE_X_FORWARDED_HOST", True, "USE_X_FORWARDED_HOST=True"),
    ],
)
def test_unknown_middleware_or_setting__fast_lane_off__one_warning_naming_it(
    member, token, settings, caplog, name, value, named
):
    setattr(settings, name, value)
    with caplog.at_level(logging.DEBUG, logger="segmenter.hot_path"):
        app = hot_path.hot_path(WSGIHandler())
        for _ in range(2):
            assert hot_path._answer(environ("/api/v1/users/42/segments/", token)) is None
            call(app, environ("/api/v1/users/42/segments/", token))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert named in warnings[0]


def test_fast_lane_setting_off__django_answers__no_warning(member, token, settings, caplog):
    settings.SEGMENTER_FAST_LANE = False
    with caplog.at_level(logging.DEBUG, logger="segmenter.hot_path"):
        fast, served, django = fresh(environ("/api/v1/users/42/segments/", token))
    assert fast is None
    assert served == django
    assert served[0] == "200 OK"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert "goes to Django: the fast lane is off" in caplog.text


def test_patch_without_token__body_not_read(twins):
    env = patch_environ(42, {"add": ["C_SEG"]}, None)
    stream = env["wsgi.input"]
    assert hot_path._patch_answer(env) is None
    assert env["wsgi.input"] is stream
    assert call(application, env)[0] == "401 Unauthorized"


def test_patch_with_expiry_object__fast_lane_answers_it(twins, token):
    body = {"add": [{"slug": "C_SEG", "expires_at": "2099-01-01T00:00:00Z"}]}
    assert hot_path._patch_answer(patch_environ(42, body, token)) is not None
    assert Membership.objects.get(user_id=42, segment__slug="C_SEG").expires_at.year == 2099


def test_patch_of_a_slug_in_other_case__goes_to_django__404_naming_the_segment(twins, token):
    body = {"add": ["c_seg", "NOPE"]}
    assert hot_path._patch_answer(patch_environ(42, body, token)) is None
    status, _, content = call(application, patch_environ(42, body, token))
    assert status == "404 Not Found"
    answer = json.loads(content)
    assert answer["detail"] == "Unknown segments: NOPE, c_seg (did you mean `C_SEG`?)"
    assert (answer["code"], answer["slugs"]) == ("segment_not_found", ["NOPE", "c_seg"])
