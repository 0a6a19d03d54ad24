"""Every route of the URLconf, through the served WSGI application (fast lane included), with every
method and a body, with a writing token, a read-only token and none: only the documented
method/token pairs change anything, and HEAD answers as GET without a body."""

import io
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from django.urls import URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from core.models import ApiToken
from events.models import Message, Webhook
from segmenter.wsgi import application
from segments.models import Exclusion, HistoryEvent, Import, Membership, Segment
from segments.services import AddItem, memberships_update, segment_create
from users.models import User, UserAttributes
from users.services import user_register

pytestmark = pytest.mark.django_db

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
REPORT_NAME = "A" * 32 + ".csv"
SAMPLES = {
    "user_id": "1000",
    "slug": "SEG_A",
    "name": REPORT_NAME,
    "object_id": "1",
    "id": "1",
    "import_id": "1",
    "content_type_id": "1",
    "app_label": "segments",
    "url": "somewhere/",
}
# A body each route would act on if it accepted the method (sent with every method).
BODIES = {
    "/api/v1/segments/": {"slug": "NEW_SEG"},
    "/api/v1/segments/{slug}/": {"description": "changed"},
    "/api/v1/segments/{slug}/rollout/": {"percent": 50},
    "/api/v1/segments/{slug}/imports/": {"user_ids": [1001]},
    "/api/v1/users/": {"user_ids": [5000]},
    "/api/v1/users/segments/": {"user_ids": [1000, 5000]},
    "/api/v1/users/attributes/imports/": {"user_id": 1000, "attributes": {"city": "Omsk"}},  # one NDJSON line
    "/api/v1/users/{user_id}/segments/": {"add": ["SEG_B"], "remove": ["SEG_A"]},
    "/api/v1/users/{user_id}/attributes/": {"attributes": {"city": "Moscow"}},
    "/api/v1/users/attributes/": {"users": [{"user_id": 1000, "attributes": {"city": "Moscow"}}]},
    "/api/v1/segments/{slug}/rule/preview/": {"rule": {"attribute": "city", "op": "eq", "value": "Moscow"}},
    "/api/v1/reports/": {"from": "2026-01"},
    "/api/v1/webhooks/": {"url": "http://93.184.215.14/hooks"},
    "/api/v1/webhooks/{id}/": {"description": "changed"},
    "/api/create_segment": {"segment_slug": "NEW_SEG"},
    "/api/delete_segment": {"segment_slug": "SEG_A"},
    "/api/update_user_segments": {"user_id": 1000, "assign_segments": ["SEG_B"], "unassign_segments": ["SEG_A"]},
    "/api/auto_assign_segment": {"segment_slug": "SEG_A", "fraction": 50},
    "/api/get_user_segments": {"user_id": 1000},
    "/api/get_user_history": {"user_id": 1000, "start_date": "2026-01"},
}
CONTENT_TYPES = {"/api/v1/users/attributes/imports/": "application/x-ndjson"}  # JSON for the others
DEFAULT_BODY = {"add": ["SEG_B"], "remove": ["SEG_A"], "segment_slug": "SEG_A", "user_id": 1000}
# Documented writes that leave this data as it is: user 1000 is already registered.
NO_OP_WRITES = {("/api/v1/users/{user_id}/", "PUT")}
# Documented operations that only read the database but write a report file (any token may).
REPORT_WRITERS = {("/api/v1/reports/", "POST"), ("/api/get_user_history", "GET"), ("/api/get_user_history", "HEAD")}
# Documented reads by POST: they change nothing and write no file (any token may).
POST_READS = {("/api/v1/users/segments/", "POST"), ("/api/v1/segments/{slug}/rule/preview/", "POST")}


def _groups(regex: str):
    """(start, end, name) of each named group, nested parentheses included."""
    for match in re.finditer(r"\(\?P<(\w+)>", regex):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(regex[end], 0)
            end += 1
        yield match.start(), end, match.group(1)


def _routes() -> list[tuple[str, str]]:
    """(path template with {name} parameters, concrete path) for every route of the URLconf."""

    def walk(patterns, prefix):
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, regex)
            else:
                yield regex.removesuffix("\\Z").removesuffix("$")

    routes = []
    for regex in walk(get_resolver().url_patterns, ""):
        template = concrete = ""
        last = 0
        for start, end, name in _groups(regex):
            literal = re.sub(r"\\(.)", r"\1", regex[last:start])
            template += literal + "{" + name + "}"
            concrete += literal + SAMPLES[name]
            last = end
        tail = re.sub(r"\\(.)", r"\1", regex[last:])
        routes.append(("/" + template + tail, "/" + concrete + tail))
    return routes


def _documented() -> set[tuple[str, str]]:
    """(path template, METHOD) of every operation in the OpenAPI schema; HEAD wherever GET is."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {(path, method.upper()) for path, item in schema["paths"].items() for method in item}
    return operations | {(path, "HEAD") for path, method in operations if method == "GET"}


# Everything a request could change in the database: (model, the columns that count; None: every column).
FINGERPRINTED = [
    (User, None),
    (Segment, None),
    (Membership, None),
    (UserAttributes, None),
    (Exclusion, None),
    (HistoryEvent, None),
    (Webhook, None),
    (Message, ["id", "msg_id"]),
    (Import, ["id", "status", "body_sha256"]),
    (ApiToken, ["id", "name", "key_hash", "read_only"]),
    (get_user_model(), ["id", "username", "password", "is_staff"]),
]
# One query for all of them (about 1,900 requests, each fingerprinted before and after).
FINGERPRINT_SQL = "SELECT md5(concat_ws('|', {}))".format(
    ", ".join(
        f"(SELECT string_agg(({'t' if columns is None else ', '.join(f't.{c}' for c in columns)})::text, ','"
        f" ORDER BY t.{model._meta.pk.column}) FROM {model._meta.db_table} t)"
        for model, columns in FINGERPRINTED
    )
)


def _fingerprint() -> str:
    """A digest of everything a request could change in the database."""
    with connection.cursor() as cursor:
        cursor.execute(FINGERPRINT_SQL)
        return cursor.fetchone()[0]


def _report_files() -> set[str]:
    folder = Path(settings.MEDIA_ROOT) / "reports"
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def _call(
    method: str, path: str, body: bytes, token: str | None, content_type: str = "application/json"
) -> tuple[int, dict, bytes]:
    """One request through the served WSGI application, as Django's test client runs it (no connection
    closing inside the test's transaction)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        content = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"], content


@pytest.fixture
def data():
    """Users 1000 and 1001, SEG_A (user 1000 a member) and SEG_B, one report file."""
    for user_id in (1000, 1001):
        user_register(user_id=user_id, actor="t")
    segment_create(slug="SEG_A", actor="t")
    segment_create(slug="SEG_B", actor="t")
    memberships_update(user_id=1000, add=[AddItem(slug="SEG_A")], remove=[], source="api", actor="t")
    Exclusion.objects.create(user_id=1000, segment=Segment.objects.get(slug="SEG_A"), actor="t")
    folder = Path(settings.MEDIA_ROOT) / "reports"
    folder.mkdir(parents=True)
    (folder / REPORT_NAME).write_text("user_id;segment;operation;at\n")
    Webhook.objects.create(pk=1, url="http://93.184.215.14/hooks", secret="whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0")
    with connection.cursor() as cursor:  # new webhooks take ids after the one given here
        cursor.execute("SELECT setval(pg_get_serial_sequence('events_webhook', 'id'), 1)")


def test_every_route_and_method__only_documented_writes_with_a_writing_token_change_anything(
    data, token, read_only_token
):
    documented = _documented()
    routes = _routes()
    assert ("/api/v1/users/{user_id}/segments/", "/api/v1/users/1000/segments/") in routes
    tokens = {"writer": token, "reader": read_only_token, "none": None}
    changed, files_written, failures = set(), set(), []
    for template, path in routes:
        body = json.dumps(BODIES.get(template, DEFAULT_BODY)).encode()
        for method in METHODS:
            for who, value in tokens.items():
                before, files_before = _fingerprint(), _report_files()
                with transaction.atomic():
                    status, _, _ = _call(method, path, body, value, CONTENT_TYPES.get(template, "application/json"))
                    if _fingerprint() != before:
                        changed.add((template, method, who))
                    transaction.set_rollback(True)
                if status >= 500:
                    failures.append((template, method, who, status))
                for name in _report_files() - files_before:
                    files_written.add((template, method, who))
                    (Path(settings.MEDIA_ROOT) / "reports" / name).unlink()

    assert failures == []
    expected = {
        (template, method, "writer")
        for template, method in documented
        if method in WRITES and (template, method) not in REPORT_WRITERS | NO_OP_WRITES | POST_READS
    }
    assert expected, "the schema documents writes"
    assert changed == expected
    assert files_written == {
        (template, method, who) for template, method in REPORT_WRITERS for who in ("writer", "reader")
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/1000/segments/",
        "/api/v1/users/1000/",
        "/api/v1/segments/",
        "/api/v1/segments/SEG_A/",
        "/api/health/",
        "/api/get_user_segments",
        f"/media/reports/{REPORT_NAME}",
    ],
)
def test_head__answers_as_get_without_body(data, read_only_token, path):
    body = b'{"user_id": 1000}' if path == "/api/get_user_segments" else b""
    get_status, get_headers, get_content = _call("GET", path, body, read_only_token)
    head_status, head_headers, head_content = _call("HEAD", path, body, read_only_token)
    assert get_status == head_status == 200
    assert get_content
    assert head_content == b""
    assert head_headers["Content-Type"] == get_headers["Content-Type"]


def test_head_with_a_patch_body__read_only_token__changes_nothing(data, read_only_token):
    before = _fingerprint()
    status, _, content = _call(
        "HEAD", "/api/v1/users/1000/segments/", b'{"add": ["SEG_B"], "remove": ["SEG_A"]}', read_only_token
    )
    assert status == 200
    assert content == b""
    assert _fingerprint() == before
    assert list(Membership.objects.filter(user_id=1000).values_list("segment__slug", flat=True)) == ["SEG_A"]


def test_every_route__405_exactly_for_the_methods_allow_leaves_out__never_options(data, token):
    """Allow lists what a route answers: every method it leaves out (OPTIONS and TRACE included) is a 405
    problem (JSON, on the schema's and Swagger UI's paths too), every method it lists is not. The admin,
    Django's own pages, is left out."""
    disagreements = []
    for template, path in _routes():
        if template.startswith("/admin/"):
            continue
        body = json.dumps(BODIES.get(template, DEFAULT_BODY)).encode()
        statuses, allowed = {}, set()
        for method in METHODS:
            with transaction.atomic():
                status, headers, content = _call(method, path, body, token)
                transaction.set_rollback(True)
            statuses[method] = status
            if "Allow" in headers:
                allowed.add(headers["Allow"])
            if status == 405 and method != "HEAD":
                assert headers["Content-Type"] == "application/problem+json", (template, method)
                assert json.loads(content)["code"] == "method_not_allowed", (template, method, content)
        assert len(allowed) == 1, (template, allowed)
        listed = {method.strip() for method in allowed.pop().split(",")}
        refused = {method for method, status in statuses.items() if status == 405}
        if listed & refused or set(METHODS) - listed != refused or "OPTIONS" in listed:
            disagreements.append((template, sorted(listed), sorted(refused)))
    assert disagreements == []
