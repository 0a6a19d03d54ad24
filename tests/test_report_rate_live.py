"""Report throttling across server processes: the count lives in the database cache."""

import pytest

from core.auth import token_create

CSV_URL = "/api/v1/reports/history.csv"


@pytest.mark.django_db(transaction=True)
def test_report_rate__two_server_processes__share_one_count(database_url, gunicorn, boundary, tmp_path):
    """The count lives in the database cache, so separate server processes see the same one."""
    token = token_create(name="flood")[1]
    env = {"SEGMENTER_REPORT_RATE": "4/min", "MEDIA_ROOT": str(tmp_path)}
    path = f"{CSV_URL}?from=2023-08"
    with gunicorn(database_url(), workers=1, **env) as one, gunicorn(database_url(), workers=1, **env) as two:
        statuses = [one.call(one.session(token), "GET", path).status_code for _ in range(2)]
        statuses += [two.call(two.session(token), "GET", path).status_code for _ in range(3)]
    assert statuses == [200, 200, 200, 200, 429]
