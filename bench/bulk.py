"""Bulk work against its raw-SQL equivalent, interleaved: rollout, expiry sweep and the CSV report."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2

from bench.dataset import REPORT_MONTH, SMALL_REPORT_MONTH, _env
from bench.journal import journaled, raw, unjournaled, untriggered
from bench.servers import code_dir

BUCKET = "(('x' || substr(md5('{slug}' || ':' || u.id::text), 1, 8))::bit(32)::bigint % 10000)"
# The raw references: one statement each that changes the memberships and writes their history rows and
# events by hand (bench.journal.raw), run with the journal's triggers disabled; the service runs with them.
ROLLOUT_CHANGE = (
    "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
    " SELECT u.id, {segment_id}, 'rollout', now(), NULL FROM users_user u WHERE {bucket} < {limit}"
    " ON CONFLICT (user_id, segment_id) DO NOTHING RETURNING user_id, segment_id, now() AS at"
)
ROLLOUT_SQL = raw(ROLLOUT_CHANGE, operation="added", source="rollout", actor="bench-sql")
EXPIRE_SQL = raw(
    "DELETE FROM segments_membership WHERE expires_at <= now() RETURNING user_id, segment_id, expires_at AS at",
    operation="removed",
    source="ttl",
    actor="system",
)
COPY_SQL = (
    "\\copy (SELECT user_id, segment_slug, operation,"
    " to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM segments_historyevent"
    " WHERE at >= '{start}-01' AND at < timestamptz '{start}-01' + interval '1 month' ORDER BY at, id)"
    " TO '{path}' WITH (FORMAT csv, DELIMITER ';')"
)


def measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command in a wrapper process; returns wall seconds, the command's peak RSS in MiB, stdout."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter();"
        " r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        " sys.stderr.write(r.stderr); print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)"
        ".ru_maxrss); print(r.stdout, end=''); sys.exit(r.returncode)"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], cwd=code_dir(), env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    first, _, rest = result.stdout.partition("\n")
    seconds, rss_kib = first.split()
    return float(seconds), int(rss_kib) // 1024, rest


def psql(dsn: str, statements: list[str]) -> tuple[float, str]:
    """Run the statements in one transaction (psql -1); wall seconds and what they printed."""
    command = ["psql", "-X", "-q", "-At", "-1", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    seconds, _, out = measured([*command, *(arg for sql in statements for arg in ("-c", sql))], _env(dsn))
    return seconds, out.strip()


def task(dsn: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.django_tasks", *args], cwd=code_dir(), env=_env(dsn),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"bench.django_tasks {' '.join(args)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _execute(dsn: str, sql: str, params=None):
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        result = cursor.fetchall() if cursor.description else None
    connection.close()
    return result


def segments_create(dsn: str, slugs: list[str]) -> None:
    """Bench segments (each a `segment.created` event by the actor `bench`), unless they exist."""
    journaled(
        dsn,
        "INSERT INTO segments_segment (slug, description, rollout_percent, created_at, updated_at)"
        " SELECT unnest(%s::text[]), 'bench', 0, now(), now() ON CONFLICT (slug) DO NOTHING",
        [slugs],
    )


def rollout(dsn: str, rounds: int, log) -> dict[str, list[float]]:
    """rollout_apply of 10% of all users (the journal's triggers write history and events) vs one statement
    that inserts the memberships, their history rows and events (triggers disabled), interleaved."""
    slugs = ["bench_rollout_a", "bench_rollout_b"]
    segments_create(dsn, slugs)
    ids = dict(_execute(dsn, "SELECT slug, id FROM segments_segment WHERE slug = ANY(%s)", [slugs]))
    times = {"service": [], "sql": [], "rows": []}
    for number in range(rounds):
        # Back to no member and 0%, unjournaled: the bench's reset is not what is measured.
        unjournaled(dsn, "DELETE FROM segments_membership WHERE segment_id = ANY(%s)", [list(ids.values())])
        unjournaled(dsn, "UPDATE segments_segment SET rollout_percent = 0 WHERE slug = ANY(%s)", [slugs])
        order = ("service", "sql") if number % 2 == 0 else ("sql", "service")
        for kind in order:
            slug = slugs[0] if kind == "service" else slugs[1]
            if kind == "service":
                result = task(dsn, "rollout", slug, "10")
                seconds, rows = result["seconds"], result["rows"]
            else:
                sql = ROLLOUT_SQL.format(segment_id=ids[slug], slug=slug, limit=1000, bucket=BUCKET.format(slug=slug))
                seconds, out = psql(dsn, untriggered(sql))
                rows = int(out)
            times[kind].append(seconds)
            times["rows"].append(rows)
            log(f"rollout round {number + 1} {kind}: {seconds:.2f} s, {rows} rows")
    _execute(dsn, "VACUUM ANALYZE segments_membership")
    return times


def expiry(dsn: str, due: int, rounds: int, log) -> dict[str, list[float]]:
    """memberships_expire of `due` due memberships (the journal's triggers write their history and events)
    vs one statement that deletes them and writes their history rows and events (triggers disabled)."""
    users = _execute(dsn, "SELECT count(*) FROM users_user")[0][0]
    buckets = -(-due // users)
    slugs = [f"bench_expiry_{n}" for n in range(buckets)]
    segments_create(dsn, slugs)
    times = {"service": [], "sql": [], "rows": []}
    for number in range(rounds):
        order = ("service", "sql") if number % 2 == 0 else ("sql", "service")
        for kind in order:
            # The due memberships, unjournaled: their joining is the set-up, not what is measured.
            unjournaled(
                dsn,
                "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
                " SELECT u.id, s.id, 'manual', now() - interval '2 days', now() - (u.id %% 86400) * interval '1 second'"
                " FROM segments_segment s CROSS JOIN users_user u WHERE s.slug = ANY(%s)"
                " ORDER BY s.id, u.id LIMIT %s ON CONFLICT DO NOTHING",
                [slugs, due],
            )
            _execute(dsn, "VACUUM ANALYZE segments_membership")
            if kind == "service":
                result = task(dsn, "expire")
                seconds, rows = result["seconds"], result["rows"]
            else:
                seconds, out = psql(dsn, untriggered(EXPIRE_SQL))
                rows = int(out)
            times[kind].append(seconds)
            times["rows"].append(rows)
            log(f"expiry round {number + 1} {kind}: {seconds:.2f} s, {rows} rows")
    # A million dead index entries at the top of segment_id make PostgreSQL 15's planner probe
    # through them on every hot-path query (get_actual_variable_range): clean up for what follows.
    _execute(dsn, "VACUUM ANALYZE segments_membership")
    return times


def report_available() -> bool:
    return (code_dir() / "reports" / "management" / "commands" / "report.py").exists()


def report(dsn: str, rounds: int, log) -> dict[str, list[float]]:
    """`manage.py report` of REPORT_MONTH (and of a month a tenth its size, for memory) vs COPY … TO."""
    times = {"service": [], "sql": [], "rss": [], "rss_small": [], "copy_rss": [], "rows": []}
    with tempfile.TemporaryDirectory() as directory:
        for number in range(rounds):
            order = ("service", "sql") if number % 2 == 0 else ("sql", "service")
            for kind in order:
                path = Path(directory) / f"{kind}.csv"
                if kind == "service":
                    command = [sys.executable, "manage.py", "report", "--from", REPORT_MONTH, "--output", str(path)]
                    seconds, rss, _ = measured(command, _env(dsn))
                    times["rss"].append(rss)
                    small_path = Path(directory) / "small.csv"
                    small = [sys.executable, "manage.py", "report", "--from", SMALL_REPORT_MONTH, "--output"]
                    times["rss_small"].append(measured([*small, str(small_path)], _env(dsn))[1])
                else:
                    seconds, rss, _ = measured(
                        ["psql", "-X", "-q", "-d", dsn, "-c", COPY_SQL.format(start=REPORT_MONTH, path=path)], _env(dsn)
                    )
                    times["copy_rss"].append(rss)
                rows = sum(1 for _ in path.open()) if path.exists() else 0
                times[kind].append(seconds)
                times["rows"].append(rows)
                log(f"report round {number + 1} {kind}: {seconds:.2f} s, {rows} rows")
    return times
