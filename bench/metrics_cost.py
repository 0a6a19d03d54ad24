"""What counting costs the fast lane, in CPU time, without HTTP or a server: `python -m bench.metrics_cost`.

One process runs the v1 GET through the served WSGI application (fast lane) in blocks of `--requests`
random users, switching between request and query metrics counted (as served: SEGMENTER_METRICS=on,
in prometheus_client's multiprocess files as under gunicorn) and not counted (what SEGMENTER_METRICS=off
leaves: no request metrics, Django's own cursor), in a rotating order, `--rounds` rounds. Each block's
CPU time of this process (time.process_time: PostgreSQL's work is not in it) per request; the cost is
the median of per-round differences. The database is one `python -m bench` built (`--db`); the request
log line is off in both (DJANGO_LOG_LEVEL=WARNING).
"""

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time

from bench.dataset import admin_dsn, token
from bench.servers import SETTINGS_ENV


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--db", default="segmenter_bench", help="a database built by python -m bench")
    parser.add_argument("--requests", type=int, default=300, help="requests per block")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args(argv)
    dsn = admin_dsn(args.postgres, args.db)
    os.environ.update(
        SETTINGS_ENV["default"],
        DATABASE_URL=dsn,
        SEGMENTER_METRICS="on",
        DJANGO_LOG_LEVEL="WARNING",
        PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="segmenter-metrics-cost-"),
        DJANGO_SETTINGS_MODULE="segmenter.settings",
    )
    secret = token(dsn, "metrics-cost")[1]
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from segmenter.wsgi import application

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM users_user")
        users = cursor.fetchone()[0]

    def get(user_id: int) -> None:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": f"/api/v1/users/{user_id}/segments/", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {secret}", "HTTP_ACCEPT": "application/json",
            "HTTP_X_FORWARDED_PROTO": "https", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
        }  # fmt: skip
        statuses = []
        b"".join(application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        assert statuses == ["200 OK"], statuses

    for user_id in range(1, 300):  # warm: the token cache, the connection, the code
        get(user_id)
    tallied = connection.connection.cursor_factory  # core/backends/postgresql's cursor over Django's
    modes = {"counted": (True, tallied), "not counted": (False, tallied.__mro__[1])}

    def block(mode: str) -> float:
        settings.SEGMENTER_METRICS, connection.connection.cursor_factory = modes[mode]
        ids = [random.randint(1, users) for _ in range(args.requests)]
        started = time.process_time()
        for user_id in ids:
            get(user_id)
        return (time.process_time() - started) / args.requests * 1e6

    runs = {mode: [] for mode in modes}
    for number in range(args.rounds):
        for mode in list(modes)[number % 2 :] + list(modes)[: number % 2]:
            runs[mode].append(block(mode))
    costs = [a - b for a, b in zip(runs["counted"], runs["not counted"], strict=True)]
    print(
        f"CPU µs per GET, medians of {args.rounds} rounds of {args.requests}: counted"
        f" {statistics.median(runs['counted']):.1f}, not counted {statistics.median(runs['not counted']):.1f};"
        f" counting costs {statistics.median(costs):.1f} µs a request (median of per-round differences;"
        f" quartiles {statistics.quantiles(costs, n=4)[0]:.1f} and {statistics.quantiles(costs, n=4)[2]:.1f})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
