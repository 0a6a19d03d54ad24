"""Through a real pgbouncer in transaction pooling mode: nothing relies on a server connection's
identity between transactions. A streamed CSV reads its rows in chunks while other requests take
turns on the same few server connections."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection

from core.auth import token_create

EVENTS = 9000  # several fetches of export.CHUNK_ROWS rows each


@pytest.fixture
def bouncer(pgbouncer):
    db = settings.DATABASES["default"]
    bouncer = pgbouncer(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432), pool_size=2)
    yield bouncer
    bouncer.stop()


@pytest.mark.django_db(transaction=True)
def test_history_csv__streamed_through_pgbouncer_beside_other_requests__every_stream_complete(
    gunicorn, pooled_env, bouncer
):
    token = token_create(name="pooling")[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)"
            " SELECT g, 'S', 'added', 'api', 'x', now() - g * interval '1 ms' FROM generate_series(1, %s) g",
            [EVENTS],
        )
        cursor.execute("INSERT INTO users_user (id, created_at) VALUES (1, now())")
    url = bouncer.url(settings.DATABASES["default"]["NAME"])
    rate = {"SEGMENTER_REPORT_RATE": "100000/min"}
    with gunicorn(url, workers=2, threads=4, **pooled_env, **rate) as server:
        month = time.strftime("%Y-%m")

        def client(index: int) -> list[int]:
            session = server.session(token)
            counts = []
            for _ in range(3):
                if index % 2:
                    response = server.call(session, "GET", f"/api/v1/reports/history.csv?from={month}")
                    counts.append(len(response.text.splitlines()) if response.status_code == 200 else -1)
                else:
                    for _ in range(20):
                        assert server.call(session, "GET", "/api/v1/users/1/segments/").status_code == 200
            return counts

        with ThreadPoolExecutor(8) as pool:
            counts = [count for result in pool.map(client, range(8)) for count in result]
    assert counts == [EVENTS] * 12, server.log_tail()
    assert set(server.statuses) == {200}
