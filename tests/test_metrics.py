"""GET /metrics: its token, its format, the domain gauges, and counts added up from several gunicorn workers."""

import io
import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from prometheus_client.parser import text_string_to_metric_families

from core.auth import token_create
from events.models import Event
from events.services.delivery import webhook_deliver_next
from events.services.log import events_sequence
from events.services.received import BACKLOG_SQL
from events.services.webhooks import webhook_create
from segments.services import AddItem, import_create, import_run, memberships_update, segment_create, segment_delete
from users.services import user_register

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text page (fails on anything malformed)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics__read_only_token__prometheus_text(anon, read_only_token, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    anon.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {read_only_token}")  # counted once answered
    response = anon.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(response.content.decode())
    labels = (("method", "GET"), ("route", "metrics"), ("status", "200"))
    assert found[("segmenter_http_requests_total", labels)] >= 1
    assert any(name == "django_db_execute_total" for name, _ in found)


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic dXNlcjpwYXNz"])
def test_metrics__no_or_unknown_token__401_problem_json(anon, db, settings, header):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = anon.get("/metrics", **({"HTTP_AUTHORIZATION": header} if header else {}))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_metrics__writing_method__405(api, settings, method):
    settings.ALLOWED_HOSTS = ["testserver"]
    assert getattr(api, method)("/metrics").status_code == 405


def wait_for(read, expected: dict, timeout: float = 20) -> dict:
    """Poll `read()` until it holds `expected` or `timeout` seconds passed (workers write their counts about once
    a second; a loaded machine may take longer, and a passing poll returns at once)."""
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if all(found.get(name) == value for name, value in expected.items()) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def statistics_flushed(*, analyze: bool = False) -> None:
    """This connection's table statistics flushed to PostgreSQL's shared ones now (else within a second or so,
    PostgreSQL 15+); with `analyze`, the two tables of the gauges counted afresh by ANALYZE, exactly for tables
    this small (it reads every row under 30,000). ANALYZE excludes autovacuum's on the same table (their lock),
    whose count may otherwise miss commits made while it runs and stay off until the next one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # flushed as the connection goes idle after it
    if analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE segments_membership, segments_segment")


@pytest.mark.django_db(transaction=True)
def test_domain_gauges__after_changes__follow_them(api, settings):
    """The gauges are PostgreSQL's live-row counts: close, not exact (docs/api.md), as they depend on when
    statistics are flushed and on autovacuum's ANALYZE. Made current here, they are exact: counted by ANALYZE
    after the first changes, then following the next changes by the counts this connection flushed (too few
    changes for autovacuum to analyze the tables again in between)."""
    settings.ALLOWED_HOSTS = ["testserver"]

    def gauges() -> dict:
        found = samples(api.get("/metrics").content.decode())
        return {name: value for (name, labels), value in found.items() if name.startswith("segmenter_") and not labels}

    assert "segmenter_expiry_sweep_age_seconds" not in gauges()  # never swept
    for user_id in (1, 2, 3):
        user_register(user_id=user_id, actor="t")
    for slug in ("A", "B", "C"):
        segment_create(slug=slug, actor="t")
    for user_id in (1, 2):
        memberships_update(
            user_id=user_id, add=[AddItem(slug="A"), AddItem(slug="B")], remove=[], source="api", actor="t"
        )
    statistics_flushed(analyze=True)
    expected = {"segmenter_segments": 3, "segmenter_memberships": 4}
    assert {name: value for name, value in gauges().items() if name in expected} == expected

    segment_delete(slug="A", actor="t")
    call_command("expire_memberships")
    statistics_flushed()
    expected = {"segmenter_segments": 2, "segmenter_memberships": 2}
    found = gauges()
    assert {name: value for name, value in found.items() if name in expected} == expected
    assert 0 <= found["segmenter_expiry_sweep_age_seconds"] < 60


@pytest.mark.django_db(transaction=True)
def test_webhook_gauges__events_waiting_then_delivered__backlog_and_oldest_age_by_webhook(api, settings, receiver):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True
    webhook = webhook_create(url=receiver.url)
    labels = (("webhook", str(webhook.pk)),)

    def gauges() -> tuple[float, float]:
        found = samples(api.get("/metrics").content.decode())
        return (
            found[("segmenter_webhook_backlog_events", labels)],
            found[("segmenter_webhook_oldest_undelivered_age_seconds", labels)],
        )

    def deliver() -> None:
        while webhook_deliver_next(webhook.pk):
            pass

    assert gauges() == (0, 0)
    for slug in ("A", "B", "C"):
        segment_create(slug=slug, actor="t")
    Event.objects.update(at=F("at") - timedelta(seconds=100))
    backlog, seconds = gauges()
    assert backlog == 0  # not numbered yet, but waited for
    assert 100 <= seconds < 160
    events_sequence()
    backlog, seconds = gauges()
    assert backlog == 3
    assert 100 <= seconds < 160
    deliver()
    assert gauges() == (0, 0)

    segment_create(slug="D", actor="t")
    segment_create(slug="E", actor="t")
    events_sequence()
    receiver.failures = 1
    deliver()  # its message of D and E fails: passed, not received
    backlog, seconds = gauges()
    assert backlog == 2
    assert 0 <= seconds < 60
    time.sleep(1.1)  # the retry is due after 1 s
    deliver()
    assert gauges() == (0, 0)


@pytest.mark.django_db
def test_webhook_gauges__explained__read_the_event_log_by_its_indexes():
    segment_create(slug="A", actor="t")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + BACKLOG_SQL)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on events_event" not in plan, plan


def requests_counted(text: str, route: str) -> float:
    return sum(
        value
        for (name, labels), value in samples(text).items()
        if name == "segmenter_http_requests_total" and dict(labels)["route"] == route
    )


@pytest.mark.django_db(transaction=True)
def test_metrics__live_gunicorn_workers__counts_of_every_worker_added_up(database_url, gunicorn, tmp_path):
    """Two workers, one of them killed midway: /metrics counts every request, the dead worker's too."""
    user_register(user_id=7, actor="t")
    token = token_create(name="live")[1]
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")
    headers = {"Authorization": f"Bearer {token}"}
    with gunicorn(
        database_url(), workers=2, threads=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), DJANGO_LOG_LEVEL="INFO"
    ) as server:
        assert not (metrics_dir / "counter_1.db").exists()  # emptied at start

        def hit(times: int) -> None:
            for number in range(times):  # a new connection each time: the workers share them out
                for path in ("/api/v1/users/7/segments/", "/api/v1/segments/"):
                    response = requests.get(server.base_url + path, headers={**headers, "X-Request-ID": f"r{number}"})
                    assert response.status_code == 200
                    assert response.headers["X-Request-ID"] == f"r{number}"

        hit(20)
        deadline = time.monotonic() + 20  # each worker writes its counts to its files about once a second
        while not (served := {int(path.stem.split("_")[1]) for path in metrics_dir.glob("counter_*.db")}):
            assert time.monotonic() < deadline, "no worker wrote its counts"
            time.sleep(0.1)
        assert served <= set(server.worker_pids())
        killed = next(iter(served))
        hit(5)
        os.kill(killed, signal.SIGTERM)  # it writes its last counts as it exits; gunicorn starts another worker
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (killed in server.worker_pids() or len(server.worker_pids()) < 2):
            time.sleep(0.1)
        time.sleep(1)  # the new worker has loaded the app
        hit(20)

        def counted() -> dict:
            page = requests.get(server.base_url + "/metrics", headers=headers)
            assert page.status_code == 200
            return {route: requests_counted(page.text, route) for route in ("user-segments", "segment-list")}

        expected = {"user-segments": 45, "segment-list": 45}
        assert wait_for(counted, expected) == expected
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 2
        lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    requests_lines = [line for line in lines if line.get("logger") == "segmenter.requests"]
    lane = [line for line in requests_lines if line["route"] == "user-segments" and line["request_id"] == "r19"]
    assert [(line["method"], line["status"], line["path"]) for line in lane] == [
        ("GET", 200, "/api/v1/users/7/segments/")
    ] * 2
    assert not Path(metrics_dir).exists() or not list(metrics_dir.glob("*.db"))  # removed at exit


def test_import_gauges__queued_then_run__queue_and_oldest_age(api, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    segment_create(slug="A", actor="t")
    created = [import_create(slug="A", body=io.BytesIO(b"1\n"), format="csv", mode="add", actor="t")[0] for _ in "ab"]

    def gauges() -> dict:
        found = samples(api.get("/metrics").content.decode())
        return {name: value for (name, _), value in found.items() if "import" in name}

    queued = gauges()
    assert (queued["segmenter_imports_queued"], queued["segmenter_imports_running"]) == (2, 0)
    assert queued["segmenter_import_oldest_unfinished_age_seconds"] >= 0
    for one in created:
        import_run(one.pk)
    assert gauges() == {
        "segmenter_imports_queued": 0,
        "segmenter_imports_running": 0,
        "segmenter_import_oldest_unfinished_age_seconds": 0,
    }


def test_import_gauges__explained__read_the_partial_index_of_unfinished_imports():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT count(*) FROM segments_import WHERE status = 'queued'")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "import_unfinished" in plan, plan
