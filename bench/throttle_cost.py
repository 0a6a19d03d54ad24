"""What the rate check costs a request, side by side: `python -m bench.throttle_cost`.

One process runs requests through the served WSGI application (the fast lane and Django), in blocks
of `--requests`, switching between the rate counted and not in a rotating order, `--rounds` rounds:

- report: `POST /api/v1/reports/` of a month of `--events` history events, SEGMENTER_REPORT_RATE
  set (high enough never to refuse) vs empty;
- patch, Django: `PATCH /api/v1/users/{id}/segments/` (one add, one remove), SEGMENTER_WRITE_RATE
  set vs empty with the fast lane off (SEGMENTER_FAST_LANE=off): the check's own cost;
- patch, as served: the same with the fast lane on, which counts the PATCH it answers.

Each block's wall time per request (PostgreSQL's work included, one connection, nothing in parallel);
ratios are medians of per-round ratios. Last, the check alone (one statement) in a loop. The database
is any migrated one (`--db`): users, segments and events are added once, tagged `bench-throttle`.
The request log line is off (DJANGO_LOG_LEVEL=WARNING).
"""

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time

from bench.dataset import admin_dsn
from bench.servers import SETTINGS_ENV

USERS, SEGMENTS, MONTH = 1000, 10, "2024-02"
NEVER_REFUSED = "1000000000/min"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throttle_cost", description=__doc__)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--db", default="segmenter_bench", help="a migrated database")
    parser.add_argument("--requests", type=int, default=50, help="requests per block")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events", type=int, default=1000, help="history events in the reported month")
    args = parser.parse_args(argv)
    os.environ.update(
        SETTINGS_ENV["default"],
        DATABASE_URL=admin_dsn(args.postgres, args.db),
        DJANGO_LOG_LEVEL="WARNING",
        SEGMENTER_METRICS="off",
        MEDIA_ROOT=tempfile.mkdtemp(prefix="segmenter-throttle-cost-"),
        DJANGO_SETTINGS_MODULE="segmenter.settings",
    )
    import django

    django.setup()
    from django.test import override_settings

    from segmenter.wsgi import application

    secret = _data(args.events)

    def call(method: str, path: str, body: dict, expected: str) -> None:
        raw = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {secret}",
            "HTTP_ACCEPT": "application/json", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
            "HTTP_X_FORWARDED_PROTO": "https", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
            "wsgi.errors": sys.stderr,
        }  # fmt: skip
        statuses = []
        b"".join(application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        assert statuses == [expected], statuses

    def report() -> None:
        call("POST", "/api/v1/reports/", {"from": MONTH}, "201 Created")

    def patch() -> None:
        add, remove = random.sample(range(1, SEGMENTS + 1), 2)
        body = {"add": [f"BENCH_{add}"], "remove": [f"BENCH_{remove}"]}
        call("PATCH", f"/api/v1/users/{random.randint(1, USERS)}/segments/", body, "200 OK")

    off = {"SEGMENTER_REPORT_RATE": None, "SEGMENTER_WRITE_RATE": None}
    django = {**off, "SEGMENTER_FAST_LANE": False}
    pairs = {
        "report": (report, {**off, "SEGMENTER_REPORT_RATE": NEVER_REFUSED}, off),
        "patch, Django": (patch, {**django, "SEGMENTER_WRITE_RATE": NEVER_REFUSED}, django),
        "patch, as served": (patch, {**off, "SEGMENTER_WRITE_RATE": NEVER_REFUSED}, off),
    }

    def block(run, overrides: dict) -> float:
        with override_settings(**overrides):
            run()  # the settings' first request (the fast lane reads them once)
            started = time.perf_counter()
            for _ in range(args.requests):
                run()
            return (time.perf_counter() - started) / args.requests * 1e6

    for run, counted, _ in pairs.values():
        block(run, counted)  # warm: the token cache, the connection, the code
    for name, (run, counted, uncounted) in pairs.items():
        runs = {"counted": [], "not counted": []}
        for number in range(args.rounds):
            order = [("counted", counted), ("not counted", uncounted)]
            for mode, overrides in order[number % 2 :] + order[: number % 2]:
                runs[mode].append(block(run, overrides))
        ratios = [a / b for a, b in zip(runs["counted"], runs["not counted"], strict=True)]
        print(
            f"{name}: µs a request, medians of {args.rounds} rounds of {args.requests}: rate counted"
            f" {statistics.median(runs['counted']):,.0f}, not counted {statistics.median(runs['not counted']):,.0f};"
            f" counted ÷ not counted {statistics.median(ratios):.3f} (median of per-round ratios;"
            f" quartiles {statistics.quantiles(ratios, n=4)[0]:.3f} and {statistics.quantiles(ratios, n=4)[2]:.3f})"
        )

    from core.throttles import rate_hit

    alone = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(args.requests):
            rate_hit(key="bench:throttle-cost", rate=NEVER_REFUSED)
        alone.append((time.perf_counter() - started) / args.requests * 1e6)
    print(f"the check alone (core.throttles.rate_hit): {statistics.median(alone):,.0f} µs a call, median of rounds")


def _data(events: int) -> str:
    """Users, segments and a month of history for the runs, made once; returns a new token."""
    from django.db import connection, transaction

    from core.auth import token_create

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users_user (id, created_at) SELECT g, now() FROM generate_series(1, %s) g"
            " ON CONFLICT DO NOTHING",
            [USERS],
        )
        cursor.execute("SELECT count(*) FROM segments_segment WHERE slug LIKE 'BENCH\\_%%'")
        if cursor.fetchone()[0] < SEGMENTS:
            from segments.services import segment_create

            for number in range(1, SEGMENTS + 1):
                segment_create(slug=f"BENCH_{number}", actor="bench-throttle")
    with transaction.atomic(), connection.cursor() as cursor:
        # No trigger fires: the history loaded gets no event each (events_from_history), as in bench.dataset.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)"
            " SELECT g %% %s + 1, 'BENCH_1', 'added', 'api', 'bench-throttle', %s::date + g * interval '1 s'"
            " FROM generate_series(1, %s - (SELECT count(*) FROM segments_historyevent"
            " WHERE actor = 'bench-throttle' AND at >= %s::date AND at < %s::date + interval '1 month')) g",
            [USERS, f"{MONTH}-01", events, f"{MONTH}-01", f"{MONTH}-01"],
        )
    return token_create(name=f"bench-throttle-{time.time_ns()}")[1]


if __name__ == "__main__":
    main(sys.argv[1:])
