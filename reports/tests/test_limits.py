"""Report floods: per-token throttling, the row cap, and report files that expire."""

import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from core.auth import token_create
from reports.errors import ReportTooLarge
from reports.export import HistoryQuery
from reports.periods import Month, period_of
from reports.services import report_size_check, reports_purge

CSV_URL = "/api/v1/reports/history.csv"
AUGUST = {"from": "2023-08"}  # three events in the boundary fixture


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def report_request(client: APIClient, kind: str):
    if kind == "post":
        return client.post("/api/v1/reports/", AUGUST, format="json")
    if kind == "csv":
        return client.get(CSV_URL, AUGUST)
    return client.get("/api/get_user_history", {"user_id": 1000, "start_date": "2023-8", "end_date": "2023-8"})


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    return response.json()


def report_files() -> list[str]:
    folder = settings.MEDIA_ROOT / "reports"
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize("kind", ["post", "csv", "seed"])
def test_report_requests__over_the_rate__429_with_retry_after(boundary, read_only_token, settings, kind):
    settings.SEGMENTER_REPORT_RATE = "3/min"
    client = client_for(read_only_token)
    assert [report_request(client, kind).status_code for _ in range(3)] == [201 if kind == "post" else 200] * 3
    files = report_files()
    response = report_request(client, kind)
    problem = assert_problem(response, 429, "throttled")
    assert problem["status"] == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert report_files() == files  # nothing written for the refused request


def test_report_requests__rate_counts_per_token__other_token_still_served(boundary, token, settings):
    settings.SEGMENTER_REPORT_RATE = "2/min"
    first, second = client_for(token), client_for(token_create(name="other")[1])
    assert [report_request(first, "csv").status_code for _ in range(3)] == [200, 200, 429]
    assert report_request(second, "csv").status_code == 200
    assert first.get("/api/v1/users/1000/history/", AUGUST).status_code != 429  # only reports are counted


def test_report_requests__rate_window_passed__served_again(boundary, token, settings):
    settings.SEGMENTER_REPORT_RATE = "1/min"
    client = client_for(token)
    assert report_request(client, "csv").status_code == 200
    assert 55 <= int(report_request(client, "csv")["Retry-After"]) <= 60  # the minute, less the time between
    with connection.cursor() as cursor:  # the window ends (the database's clock counts it)
        cursor.execute("UPDATE segmenter_ratecount SET window_end = statement_timestamp() - interval '1 second'")
    assert report_request(client, "csv").status_code == 200
    assert report_request(client, "csv").status_code == 429


@pytest.mark.parametrize("kind", ["post", "csv", "seed"])
def test_report_requests__over_the_row_cap__413_and_no_file(boundary, token, settings, kind):
    settings.SEGMENTER_REPORT_MAX_ROWS = 1  # user 1000 has two events, the month three
    problem = assert_problem(report_request(client_for(token), kind), 413, "report_too_large")
    assert problem["max_rows"] == 1
    assert report_files() == []


def test_report_post__exactly_the_row_cap__written(boundary, token, settings):
    settings.SEGMENTER_REPORT_MAX_ROWS = 3
    response = report_request(client_for(token), "post")
    assert response.status_code == 201
    assert response.json()["rows"] == 3
    assert len(report_files()) == 1


def test_report_size_check__cap__counts_the_query_filters(boundary, settings):
    settings.SEGMENTER_REPORT_MAX_ROWS = 2
    august = period_of(Month(2023, 8), None)
    report_size_check(query=HistoryQuery(period=august, user_id=1000))  # two rows: allowed
    with pytest.raises(ReportTooLarge):
        report_size_check(query=HistoryQuery(period=august))


def _report_file(age: timedelta) -> str:
    folder = settings.MEDIA_ROOT / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{os.urandom(24).hex()[:32]}.csv"
    path = folder / name
    path.write_bytes(b"1;S;added;2023-08-01T00:00:00Z\n")
    written = time.time() - age.total_seconds()
    os.utime(path, (written, written))
    return name


def test_reports_purge__default__files_older_than_the_ttl_setting_deleted(db, settings):
    old, recent = _report_file(timedelta(hours=25)), _report_file(timedelta(hours=23))
    assert reports_purge() == 1
    assert report_files() == [recent]
    settings.SEGMENTER_REPORT_TTL_HOURS = 1
    call_command("purge_reports", stdout=open(os.devnull, "w"))
    assert report_files() == []
    assert old not in report_files()
