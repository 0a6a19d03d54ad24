"""X-Request-ID on every response, the request metrics and the JSON log line, from Django and the fast lane alike."""

import io
import json
import logging
import re

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.test import RequestFactory
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from core import telemetry
from core.models import JobRun
from segmenter import hot_path
from segments.services import AddItem, memberships_update, segment_create
from users.services import user_register

pytestmark = pytest.mark.django_db

LANE_GET = "/api/v1/users/42/segments/"
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def member():
    user_register(user_id=42, actor="t")
    segment_create(slug="A_SEG", actor="t")
    memberships_update(user_id=42, add=[AddItem(slug="A_SEG")], remove=[], source="api", actor="t")
    return 42


@pytest.fixture(params=["fast lane", "django"])
def served(request, settings):
    """The served application with the fast lane on, or off (Django answers the hot path too)."""
    settings.SEGMENTER_FAST_LANE = request.param == "fast lane"
    return hot_path.hot_path(WSGIHandler())


@pytest.fixture
def log_lines():
    """The JSON lines the configured console handler writes (settings.LOGGING), as dicts."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


def get(app, path: str, token: str | None, method: str = "GET", **extra) -> tuple[str, dict[str, str], bytes]:
    headers = {"HTTP_HOST": "localhost", **extra}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(response_headers)

    request_started.disconnect(close_old_connections)  # keep the test's transaction's connection
    request_finished.disconnect(close_old_connections)
    try:
        result = app(RequestFactory().generic(method, path, **headers).environ, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"], body


def count(route: str, method: str, status: str) -> float:
    telemetry.tally.flush()
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("segmenter_http_requests_total", labels) or 0.0


@pytest.mark.parametrize("path", [LANE_GET, "/api/v1/segments/", "/api/v1/users/43/segments/", "/nowhere"])
def test_request_id__well_formed_client_id__echoed(member, token, served, path):
    status, headers, _ = get(served, path, token, HTTP_X_REQUEST_ID="req-1.a_B:9")
    assert headers["X-Request-ID"] == "req-1.a_B:9"


@pytest.mark.parametrize("path", [LANE_GET, "/api/v1/segments/", "/api/health/"])
def test_request_id__none_sent__a_new_one_each_time(member, token, served, path):
    first = get(served, path, token)[1]["X-Request-ID"]
    second = get(served, path, token)[1]["X-Request-ID"]
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize("given", ["a" * 129, "", "two words", "<script>", "a\tb", "é", "id;drop", "x" * 5000])
def test_request_id__malformed__replaced_by_a_new_one(member, token, served, given):
    status, headers, body = get(served, LANE_GET, token, HTTP_X_REQUEST_ID=given)
    assert status == "200 OK"
    assert GENERATED.fullmatch(headers["X-Request-ID"])


def test_request_id__longest_accepted__128_characters(member, token, served):
    assert get(served, LANE_GET, token, HTTP_X_REQUEST_ID="a" * 128)[1]["X-Request-ID"] == "a" * 128


def test_log_line__every_request__one_json_object_with_its_fields(member, token, served, log_lines):
    get(served, LANE_GET, token, HTTP_X_REQUEST_ID="one")
    get(served, "/api/v1/users/43/segments/", token, HTTP_X_REQUEST_ID="two")
    lines = {line["request_id"]: line for line in log_lines() if line["logger"] == "segmenter.requests"}
    one, two = lines["one"], lines["two"]
    assert (one["route"], one["method"], one["status"], one["path"]) == ("user-segments", "GET", 200, LANE_GET)
    assert (two["route"], two["status"], two["level"]) == ("user-segments", 404, "INFO")
    assert 0 < one["duration_ms"] < 10_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", one["time"])


def test_log_line__lane_and_django__same_route_method_status(member, token, settings, log_lines):
    get(hot_path.hot_path(WSGIHandler()), LANE_GET, token, HTTP_X_REQUEST_ID="lane")
    settings.SEGMENTER_FAST_LANE = False
    get(hot_path.hot_path(WSGIHandler()), LANE_GET, token, HTTP_X_REQUEST_ID="django")
    settings.SEGMENTER_FAST_LANE = True
    seed = "/api/get_user_segments?user_id=42"
    get(hot_path.hot_path(WSGIHandler()), seed, token, HTTP_X_REQUEST_ID="seed-lane")
    get(hot_path.hot_path(WSGIHandler()), seed, token, HTTP_X_REQUEST_ID="seed-django", HTTP_ACCEPT="text/*")
    lines = {line["request_id"]: line for line in log_lines() if line["logger"] == "segmenter.requests"}
    fields = ("route", "method", "status", "path")
    assert [lines["lane"][name] for name in fields] == [lines["django"][name] for name in fields]
    assert lines["seed-lane"]["route"] == lines["seed-django"]["route"]


def test_request_metrics__lane_and_django__counted_by_route_method_status(member, token, served):
    labels = [("user-segments", "GET", "200"), ("user-segments", "GET", "404"), ("unmatched", "GET", "404")]
    before = [count(*each) for each in labels]
    get(served, LANE_GET, token)
    get(served, LANE_GET, token)
    get(served, "/api/v1/users/43/segments/", token)
    get(served, "/nowhere", token)
    assert [count(*each) - old for each, old in zip(labels, before, strict=True)] == [2, 1, 1]


def test_request_metrics__unknown_method__counted_as_other(member, token):
    before = count("user-segments", "other", "405")
    assert get(hot_path.hot_path(WSGIHandler()), LANE_GET, token, method="BREW")[0] == "405 Method Not Allowed"
    assert count("user-segments", "other", "405") == before + 1


def test_request_metrics__setting_off__nothing_counted_still_logged(member, token, served, settings, log_lines):
    settings.SEGMENTER_METRICS = False
    before = count("user-segments", "GET", "200")
    get(served, LANE_GET, token, HTTP_X_REQUEST_ID="uncounted")
    assert count("user-segments", "GET", "200") == before
    lines = [line for line in log_lines() if line["logger"] == "segmenter.requests"]
    assert [line["status"] for line in lines if line["request_id"] == "uncounted"] == [200]


def test_expire_memberships__round__one_json_line_and_sweep_time_recorded(log_lines, caplog):
    caplog.set_level(logging.DEBUG, logger="segmenter.jobs")  # a round that changed nothing is a DEBUG line
    call_command("expire_memberships")
    rounds = [line for line in log_lines() if line["logger"] == "segmenter.jobs"]
    assert len(rounds) == 1
    assert (rounds[0]["job"], rounds[0]["status"], rounds[0]["count"]) == ("expire_memberships", "ok", 0)
    assert rounds[0]["level"] == "DEBUG"
    assert GENERATED.fullmatch(rounds[0]["request_id"])
    assert JobRun.objects.filter(name="expire_memberships").exists()


def test_tally__flushed__the_same_metrics_as_counting_each_at_once():
    def metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
        return (
            Counter("t_total", "t", ["a"], registry=registry),
            Histogram("t_seconds", "t", ["a"], buckets=(0.01, 0.1, 1.0), registry=registry),
        )

    direct, tallied = CollectorRegistry(), CollectorRegistry()
    (counter, histogram), (tally_counter, tally_histogram) = metrics(direct), metrics(tallied)
    tally = telemetry.Tally()
    for label, value in [("x", 0.0), ("x", 0.01), ("x", 0.05), ("y", 0.5), ("x", 7.0), ("y", 0.1), ("x", 0.01)]:
        counter.labels(label).inc(2)
        histogram.labels(label).observe(value)
        tally.count(tally_counter, (label,), 2)
        tally.observe(tally_histogram, (label,), value)
    assert REGISTRY is not tallied and tallied.get_sample_value("t_total", {"a": "x"}) is None  # not yet written
    tally.flush()

    def lines(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert lines(tallied) == lines(direct)
    assert tallied.get_sample_value("t_seconds_bucket", {"a": "x", "le": "0.01"}) == 3


def test_query_metrics__statements_and_errors__counted_by_alias_and_vendor():
    labels = {"alias": "default", "vendor": "postgresql"}

    def sample(name: str, **extra: str) -> float:
        telemetry.tally.flush()
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    failed = sample("django_db_errors_total", type="UndefinedTable")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert sample("django_db_errors_total", type="UndefinedTable") == failed + 1
    before = (sample("django_db_execute_total"), sample("django_db_query_duration_seconds_count"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.executemany("SELECT %s", [(1,), (2,), (3,)])
    after = (sample("django_db_execute_total"), sample("django_db_query_duration_seconds_count"))
    assert (after[0] - before[0], after[1] - before[1]) == (4, 2)  # executemany: 3 statements, 1 call timed
