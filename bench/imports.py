"""An import of every user against its raw-SQL equivalent, interleaved, and the worker's peak memory by file size.

The database `<db>_imports` holds the users and memberships of the main dataset without its history
(seed_users and set-based SQL; built once, then kept) and two empty segments. Each round copies it
twice and imports the same file, every user id once in a shuffled order, into a segment of each copy,
one after the other (the order alternates): through the service, `import_create` then the worker's
task in a child process (bench.django_tasks `import`), where the membership journal's triggers write
history and events, and through psql, `\\copy` of the ids into a table then one statement (`import_sql`):
the import's `INSERT … SELECT … ON CONFLICT` over the whole table, with its history rows and events
written by hand in the same statement and the triggers disabled (bench.journal.raw). The service's
copy then imports the file's first tenth into the other segment: the worker's peak RSS for a tenth of
the lines.
"""

import random
import shlex
import tempfile
from pathlib import Path

import psycopg2

from bench.bulk import _execute, measured, segments_create, task
from bench.dataset import Sizes, _env, admin_dsn, build
from bench.journal import raw, untriggered

SLUG, SMALL_SLUG = "bench_import", "bench_import_small"
TABLE = "bench_import_ids"
# The import's INSERT of a chunk (segments.services.imports `_add_listed`), over the whole table and without expiry.
IMPORT_INSERT = (
    "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
    " SELECT i.user_id, {segment_id}, 'manual', clock_timestamp(), NULL"
    " FROM {table} i JOIN users_user u ON u.id = i.user_id"
    " ORDER BY i.user_id FOR KEY SHARE OF u ON CONFLICT (user_id, segment_id) DO NOTHING"
)


def import_sql(segment_id: int, table: str) -> str:
    """The reference: the import's INSERT of every id in `table` into the segment, with its history rows and
    events in the same statement (run it with the journal's triggers disabled: `untriggered`)."""
    change = IMPORT_INSERT.format(segment_id=segment_id, table=table) + " RETURNING user_id, segment_id, now() AS at"
    return raw(change, operation="added", source="import", actor="bench-sql")


def ids_write(directory: Path, users: int) -> tuple[Path, Path]:
    """Every user id 1..users once, shuffled (the same order every run), and the first tenth of that file."""
    ids = list(range(1, users + 1))
    random.Random(16).shuffle(ids)
    full, small = directory / "ids.csv", directory / "ids_tenth.csv"
    full.write_text("".join(f"{user_id}\n" for user_id in ids))
    small.write_text("".join(f"{user_id}\n" for user_id in ids[: users // 10]))
    return full, small


def reference_commands(sql: str, path: Path) -> list[str]:
    """psql's arguments for the reference, in one transaction: COPY of the file into a table, then the
    statement with the journal's triggers disabled."""
    statements = [
        f"CREATE TEMP TABLE {TABLE} (user_id bigint)",
        f"\\copy {TABLE} FROM {shlex.quote(str(path))}",
        f"ANALYZE {TABLE}",
        *untriggered(sql),
    ]
    return ["-1", *(arg for statement in statements for arg in ("-c", statement))]


def _copy(server: str, template: str, db: str) -> str:
    connection = psycopg2.connect(admin_dsn(server, "postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{db}" TEMPLATE "{template}"')
    connection.close()
    return admin_dsn(server, db)


def _drop(server: str, db: str) -> None:
    connection = psycopg2.connect(admin_dsn(server, "postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    connection.close()


def _written(dsn: str, slug: str) -> tuple[int, int, int]:
    """(memberships, history rows, events) of the segment."""
    return _execute(
        dsn,
        "SELECT (SELECT count(*) FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id"
        " WHERE s.slug = %(slug)s), (SELECT count(*) FROM segments_historyevent WHERE segment_slug = %(slug)s),"
        " (SELECT count(*) FROM events_event WHERE segment = %(slug)s AND type LIKE 'membership.%%')",
        {"slug": slug},
    )[0]


def imports(server: str, db: str, sizes: Sizes, rounds: int, log) -> dict[str, list]:
    """Per round: seconds of each side, the rows each wrote, and the service's RSS and time by step."""
    template = f"{db}_imports"
    base = build(server=server, db=template, sizes=Sizes(sizes.users, sizes.segments, 0, 0, 0), reuse=True, log=log)
    segments_create(base, [SLUG, SMALL_SLUG])
    segment_id = _execute(base, "SELECT id FROM segments_segment WHERE slug = %s", [SLUG])[0][0]
    reference = import_sql(segment_id, TABLE)
    times = {"service": [], "sql": [], "rows": [], "results": [], "small": []}
    with tempfile.TemporaryDirectory() as directory:
        full, small = ids_write(Path(directory), sizes.users)
        for number in range(rounds):
            order = ("service", "sql") if number % 2 == 0 else ("sql", "service")
            copies = {kind: _copy(server, template, f"{template}_{kind}") for kind in order}
            _execute(base, "CHECKPOINT")  # the copies on disk before either side is timed
            for kind in order:
                dsn = copies[kind]
                if kind == "service":
                    result = task(dsn, "import", SLUG, str(full))
                    seconds = result["seconds"]
                    times["results"].append(result)
                else:
                    command = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn]
                    seconds = measured([*command, *reference_commands(reference, full)], _env(dsn))[0]
                written = _written(dsn, SLUG)
                if written != (sizes.users,) * 3:
                    raise RuntimeError(f"import {kind}: (memberships, history, events) {written}, not {sizes.users}")
                times[kind].append(seconds)
                times["rows"].append(written[0])
                log(f"import round {number + 1} {kind}: {seconds:.2f} s, {written[0]} rows")
            times["small"].append(task(copies["service"], "import", SMALL_SLUG, str(small)))
            log(f"import round {number + 1}: peak RSS {result['rss']:.0f} MiB, {times['small'][-1]['rss']:.0f} MiB")
            for kind in order:
                _drop(server, f"{template}_{kind}")
    return times
