"""History by month: a month's report when history holds twelve such months against when it holds
only that month (issue: at most 1.2×). `python -m bench.history_months --events N [--rounds R]`.

Two databases are built with migrate and set-based SQL: `<db>_one` with N events in 2025-06, and
`<db>_twelve` with the same N there plus N in each of the eleven months before. The report of
2025-06 (`report_copy`, COPY into a file, as POST /api/v1/reports/ writes it; timed inside a
child process, without its start-up) runs on each in turn, R rounds; medians and their ratio.
"""

import argparse
import sys

import psycopg2

from bench.bulk import task
from bench.cli import log
from bench.dataset import admin_dsn, manage
from bench.stats import median, ratio

MONTH = "2025-06"
EVENTS_SQL = (
    "INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)"
    " SELECT 1 + g %% 100000, 'seg_' || (1 + g %% 1000), CASE WHEN g %% 2 = 0 THEN 'added' ELSE 'removed' END,"
    " 'api', 'bench', timestamptz %(start)s + (g - 1) * (interval '28 days' / %(events)s)"
    " FROM generate_series(1::bigint, %(events)s) g"
)


def build(server: str, db: str, *, events: int, months: int) -> str:
    """Database `db` with `events` events in each of the `months` months up to MONTH."""
    dsn = admin_dsn(server, db)
    connection = psycopg2.connect(admin_dsn(server, "postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{db}"')
    connection.close()
    manage(dsn, "migrate", "--noinput", "-v", "0")
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        # No trigger fires: the history loaded gets no event each (events_from_history), as in bench.dataset.
        cursor.execute("SET session_replication_role = replica")
        for back in range(months):
            cursor.execute(f"SELECT (timestamptz '{MONTH}-01 00:00+00' - %s * interval '1 month')::text", [back])
            start = cursor.fetchone()[0]
            cursor.execute("SELECT segments_history_partition_create(%s)", [start])
            cursor.execute(EVENTS_SQL, {"start": start, "events": events})
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    log(f"{db}: {events * months:,} events in {months} months")
    return dsn


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history_months", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the reported month")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--db", default="segmenter_bench_months")
    args = parser.parse_args(argv)
    one = build(args.postgres, f"{args.db}_one", events=args.events, months=1)
    twelve = build(args.postgres, f"{args.db}_twelve", events=args.events, months=12)
    seconds: dict[str, list[float]] = {"one": [], "twelve": []}
    for round_ in range(args.rounds + 1):  # round 0 warms both up and is not counted
        for name, dsn in (("one", one), ("twelve", twelve)):
            result = task(dsn, "report", MONTH)
            assert result["rows"] == args.events, result
            if round_:
                seconds[name].append(result["seconds"])
    one_s, twelve_s = median(seconds["one"]), median(seconds["twelve"])
    rounds = {name: sorted(round(value, 3) for value in values) for name, values in seconds.items()}
    print(f"report of {MONTH} with {args.events:,} events, {args.rounds} rounds (medians; every round):")
    print(f"  history holds that month only: {one_s:.3f} s {rounds['one']}")
    print(f"  history holds 12 such months ({12 * args.events:,} events): {twelve_s:.3f} s {rounds['twelve']}")
    print(f"  ratio: {twelve_s / one_s:.2f}× (medians), {ratio(seconds['twelve'], seconds['one']):.2f}× (per round)")


if __name__ == "__main__":
    main(sys.argv[1:])
