"""The benchmark dataset, built with the project's own migrate/seed_users and set-based SQL."""

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg2

from bench.servers import code_dir

REPORT_MONTH, SMALL_REPORT_MONTH = "2025-06", "2025-05"


@dataclass(frozen=True)
class Sizes:
    users: int
    segments: int
    per_user: int  # memberships per user
    history: int
    report_events: int  # history events in REPORT_MONTH (and a tenth of that in SMALL_REPORT_MONTH)


def admin_dsn(base: str, db: str) -> str:
    return f"{base.rstrip('/')}/{db}"


def manage(dsn: str, *args: str, code: Path | None = None) -> str:
    """manage.py of the code under test (or of `code`, another revision's tree) on the database."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=code or code_dir(), env=_env(dsn), capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _env(dsn: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": dsn, "DJANGO_LOG_LEVEL": "WARNING"}


def existing_sizes(dsn: str) -> Sizes | None:
    try:
        with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT sizes FROM bench_dataset")
            return Sizes(**json.loads(cursor.fetchone()[0]))
    except psycopg2.Error:
        return None


def build(*, server: str, db: str, sizes: Sizes, reuse: bool, log, code: Path | None = None) -> str:
    """Create database `db` with `sizes` (kept when --reuse finds the same sizes there), migrated and seeded
    by the code under test (or by `code`, another revision's tree); returns its DSN."""
    dsn = admin_dsn(server, db)
    if reuse and existing_sizes(dsn) == sizes:
        log(f"reusing {db} ({sizes})")
        return dsn
    started = time.monotonic()
    connection = psycopg2.connect(admin_dsn(server, "postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{db}"')
    connection.close()
    manage(dsn, "migrate", "--noinput", "-v", "0", code=code)
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        # Unjournaled, as the bulk load below: the dataset's segments come with no `segment.created` event.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO segments_segment (slug, description, rollout_percent, created_at, updated_at)"
            " SELECT 'seg_' || g, 'bench', 0, now(), now() FROM generate_series(1, %s) g",
            [sizes.segments],
        )
    log(f"{db}: {sizes.segments} segments; seeding {sizes.users} users with seed_users")
    manage(dsn, "seed_users", "--count", str(sizes.users), "--start", "1", code=code)
    _bulk_load(dsn, sizes, log)
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_dataset (sizes text)")
        cursor.execute("INSERT INTO bench_dataset VALUES (%s)", [json.dumps(asdict(sizes))])
    log(f"{db} built in {time.monotonic() - started:.0f} s")
    return dsn


def _bulk_load(dsn: str, sizes: Sizes, log) -> None:
    """Memberships and history with generate_series; secondary indexes are rebuilt once after loading.

    The session loads with `session_replication_role = replica`: no trigger fires, so the membership
    journal does not write a history row for each membership loaded (nor the events app an event for each
    history row loaded); the dataset holds exactly the rows written here. (Nor are the foreign keys
    checked: the rows hold by construction.)"""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            "SET maintenance_work_mem = '512MB'; SET synchronous_commit = off; SET session_replication_role = replica"
        )
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('segments_membership',"
            " 'segments_historyevent') AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SELECT min(id) FROM segments_segment")
        first_segment = cursor.fetchone()[0]
        for k in range(sizes.per_user):
            # Distinct segments per user: k * 104729 differs mod S for k < per_user when S is not tiny;
            # one in ten memberships expires in a year (so the active filter has work to do).
            cursor.execute(
                "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
                " SELECT g, %(first)s + (g * 7919 + %(k)s * 104729) %% %(segments)s, 'manual', now(),"
                " CASE WHEN g %% 10 = %(k)s THEN now() + interval '365 days' END"
                " FROM generate_series(1::bigint, %(users)s) g ON CONFLICT DO NOTHING",
                {"first": first_segment, "k": k, "segments": sizes.segments, "users": sizes.users},
            )
        log(f"memberships loaded; history: {sizes.history} events")
        small = sizes.report_events // 10
        # History's monthly partitions for every month loaded (2024 and May-June 2025), so no row
        # lands in the DEFAULT partition.
        cursor.execute(
            "SELECT segments_history_partition_create(timestamptz '2024-01-15 00:00+00' + m * interval '1 month')"
            " FROM generate_series(0, 17) m"
        )
        cursor.execute(
            "INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)"
            " SELECT 1 + g %% %(users)s, 'seg_' || (1 + g %% %(segments)s),"
            " CASE WHEN g %% 2 = 0 THEN 'added' ELSE 'removed' END, 'api', 'bench',"
            " CASE WHEN g <= %(big)s THEN timestamptz '2025-06-01'"
            " + ((g - 1) * interval '2592 seconds') / %(bigdiv)s * 1000"
            " WHEN g <= %(big)s + %(small)s THEN timestamptz '2025-05-01'"
            " + ((g - %(big)s) * interval '2678 seconds') / %(small)s * 1000"
            " ELSE timestamptz '2024-01-01' + (g * interval '31535 seconds') / %(total)s * 1000 END"
            " FROM generate_series(1::bigint, %(total)s) g",
            {
                "users": sizes.users,
                "segments": sizes.segments,
                "big": sizes.report_events,
                "bigdiv": max(sizes.report_events, 1),
                "small": max(small, 1),
                "total": max(sizes.history, sizes.report_events + small),
            },
        )
        log("history loaded; rebuilding indexes")
        for _, definition in indexes:
            # pg_indexes shows a partitioned table's index as `ON ONLY` it: made so, it would skip the partitions.
            cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
        cursor.execute("VACUUM ANALYZE")
    connection.close()


def token(dsn: str, name: str, code: Path | None = None) -> tuple[str, str]:
    """A fresh read-write API token made with create_api_token: (its name, the token on its last line)."""
    name = f"{name}-{time.time_ns()}"
    return name, manage(dsn, "create_api_token", name, code=code).strip().splitlines()[-1]
