"""Report and write rates across server processes: one count per token, kept in the database."""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.auth import token_create
from segments.services import segment_create
from users.services import user_register

CSV_URL = "/api/v1/reports/history.csv"
REPORTS_URL = "/api/v1/reports/"


def _flood(server, token: str, requests: int, connections: int, request=("POST", REPORTS_URL, {"from": "2026-01"})):
    """`requests` requests (a report's by default) at once over `connections` sessions; the answers and the
    seconds they took."""
    sessions = [server.session(token) for _ in range(connections)]
    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        answers = list(pool.map(lambda n: server.call(sessions[n % connections], *request), range(requests)))
    return answers, time.monotonic() - started


def _assert_throttled(answers: list) -> None:
    for response in answers:
        if response.status_code == 429:
            assert response.json()["code"] == "throttled"
            assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
def test_report_rate__two_server_processes__share_one_count(database_url, gunicorn, boundary, tmp_path):
    """The count lives in the database, so separate server processes see the same one."""
    token = token_create(name="flood")[1]
    env = {"SEGMENTER_REPORT_RATE": "4/min", "MEDIA_ROOT": str(tmp_path)}
    path = f"{CSV_URL}?from=2023-08"
    with gunicorn(database_url(), workers=1, **env) as one, gunicorn(database_url(), workers=1, **env) as two:
        statuses = [one.call(one.session(token), "GET", path).status_code for _ in range(2)]
        statuses += [two.call(two.session(token), "GET", path).status_code for _ in range(3)]
    assert statuses == [200, 200, 200, 200, 429]


@pytest.mark.django_db(transaction=True)
def test_report_rate__parallel_flood_over_three_processes__accepts_the_rate_only(served_database, gunicorn, tmp_path):
    """80 reports at once over 8 connections to 3 processes: 30 accepted (the default 30/min), 50 throttled;
    directly and through a pooler in transaction mode.

    The window (a minute) starts at the first request; the flood takes a few seconds, well within it.
    """
    token = token_create(name="flood", read_only=True)[1]
    env = {"SEGMENTER_REPORT_RATE": "30/min", "MEDIA_ROOT": str(tmp_path), **served_database.env}
    with gunicorn(served_database.url, workers=3, **env) as server:
        answers, seconds = _flood(server, token, requests=80, connections=8)
    assert seconds < 60, "the flood outlasted the window: the count below covers two windows"
    assert Counter(response.status_code for response in answers) == {201: 30, 429: 50}
    _assert_throttled(answers)
    assert all(int(response.headers["Retry-After"]) <= 60 for response in answers if response.status_code == 429)


@pytest.mark.django_db(transaction=True)
def test_report_rate__after_the_window__accepts_the_rate_again(database_url, gunicorn, tmp_path):
    """A window of 3 s: a flood gets 5 through, a flood after Retry-After gets 5 again, never more.

    A window starts at the first request after the last one ended, so a flood that lasts `s` seconds
    spans at most 1 + s // 3 windows (a loaded machine may make it last longer than one).
    """
    token = token_create(name="flood", read_only=True)[1]
    env = {"SEGMENTER_REPORT_RATE": "5/3s", "MEDIA_ROOT": str(tmp_path)}
    with gunicorn(database_url(), workers=3, **env) as server:
        for _ in range(2):
            answers, seconds = _flood(server, token, requests=20, connections=8)
            accepted = sum(response.status_code == 201 for response in answers)
            assert 5 <= accepted <= 5 * (1 + int(seconds // 3)), (accepted, seconds)
            _assert_throttled(answers)
            refused = [response for response in answers if response.status_code == 429]
            assert refused, "every request was accepted"
            time.sleep(max(int(response.headers["Retry-After"]) for response in refused))


@pytest.mark.django_db(transaction=True)
def test_write_rate__parallel_patches_over_three_processes__accepts_the_rate_only(database_url, gunicorn):
    """40 PATCHes at once over 8 connections to 3 processes (the fast lane answers them): 10 accepted."""
    user_register(user_id=42, actor="t")
    segment_create(slug="A_SEG", actor="t")
    token = token_create(name="writer")[1]
    patch = ("PATCH", "/api/v1/users/42/segments/", {"add": ["A_SEG"]})
    with gunicorn(database_url(), workers=3, SEGMENTER_WRITE_RATE="10/min") as server:
        answers, seconds = _flood(server, token, requests=40, connections=8, request=patch)
        assert server.call(server.session(token), "GET", "/api/v1/users/42/segments/").status_code == 200
    assert seconds < 60, "the flood outlasted the window: the count below covers two windows"
    assert Counter(response.status_code for response in answers) == {200: 10, 429: 30}
    _assert_throttled(answers)
