"""The report endpoints over real HTTP, served by gunicorn with DEBUG off (PostgreSQL runs only)."""

import json
import urllib.error
import urllib.request
from email.message import Message

import pytest

from core.auth import token_create


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, Message, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()  # names match case-insensitively
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def server(database_url, gunicorn, transactional_db, settings):
    """The production server (gunicorn.conf.py) with DEBUG off, writing reports where the test looks."""
    with gunicorn(database_url(), workers=1, MEDIA_ROOT=str(settings.MEDIA_ROOT)) as live:
        yield live.base_url


def test_reports__gunicorn_debug_off__file_served_by_the_app_and_traversal_404(server, boundary):
    token = token_create(name="live")[1]
    status, _, raw = http("POST", f"{server}/api/v1/reports/", {"from": "2023-08"}, token)
    assert status == 201
    csv_url = json.loads(raw)["csv_url"]
    assert csv_url.startswith(f"{server}/media/reports/")
    status, headers, data = http("GET", csv_url)
    assert (status, headers["Content-Type"]) == (200, "text/csv; charset=utf-8")
    assert data.count(b"\n") == 3 and data.startswith(b"1002;AVITO_DISCOUNT_30;added;2023-08-01T00:00:00Z\n")
    status, headers, streamed = http("GET", f"{server}/api/v1/reports/history.csv?from=2023-08", token=token)
    assert (status, streamed) == (200, data)
    for path in ["..%2F..%2Fmanage.py", "%2e%2e/%2e%2e/manage.py", "x" * 32 + ".csv"]:
        status, headers, raw = http("GET", f"{server}/media/reports/{path}")
        assert (status, headers["Content-Type"]) == (404, "application/problem+json"), path
