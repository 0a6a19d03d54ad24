"""Imports of a segment's members, received into storage (import_queue.py), then checked whole and applied in
chunks by the worker.

A file has one user id a line, optionally `,expires_at`, or the columns its header names
(import_lines.py: the one parser, which also reads the admin's member export and reports). `add` adds the listed users
(as a PATCH adds: an active member is not added again, and its expiry becomes the line's, or
the import's `ttl_seconds`, or none), `remove` removes them, `replace` adds them and then
removes every manual member not listed (rollout members stay).

The worker checks every line first: one invalid line fails the import and nothing changes.
Then it copies the ids (`COPY`) into the import's staging table and applies them in chunks,
one transaction each, with their history (source `import`) and events; each chunk moves `done`
in the same transaction, so a worker killed mid-import leaves `done` exactly at the last chunk
applied and the next worker resumes there (task queue: jobs of dead workers run again). An
import is `succeeded` only once every chunk is in. Unknown users are skipped and counted (the
first MAX_PROBLEMS listed), or with `register` registered first (add and replace; counted as
`registered`); a repeated id counts once (its first line).
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from core.db import CLOCK
from segments.models import Import
from segments.services.expiry import memberships_expire
from segments.services.import_files import import_file_delete, import_file_lines
from segments.services.import_lines import LineParser
from segments.services.journal import journal
from segments.services.rollout import rollout_join_users

logger = logging.getLogger(__name__)

MODES = tuple(Import.Mode.values)
MAX_PROBLEMS = 20
COPY_ROWS = 10_000
RUN_TASK = "run_import"  # segments/tasks.py


class ImportFailed(Exception):
    """Why an import stops as failed; its message is the import's `error`."""


# --- Running -----------------------------------------------------------------------------------


def import_run(import_id: int, *, chunk_lines: int | None = None) -> Import:
    """Check, stage and apply the import, or resume it where it stopped; returns it as it ends.
    Chunks of `chunk_lines` lines, by default settings.SEGMENTER_IMPORT_CHUNK_LINES."""
    started = _start(import_id)
    if started is None:
        return Import.objects.get(pk=import_id)
    chunk_lines = chunk_lines or settings.SEGMENTER_IMPORT_CHUNK_LINES
    if started.kind == Import.Kind.ATTRIBUTES:
        # That module builds on this one: the receiving, staging, chunks and resuming are these.
        from segments.services.attribute_imports import AttributeStage, attributes_apply_chunk

        _run(started, AttributeStage(import_id), chunk_lines, attributes_apply_chunk)
    else:
        _run(started, _Stage(import_id), chunk_lines, _apply_chunk)
    return Import.objects.get(pk=import_id)


def _run(started: Import, stage: "_Stage", chunk_lines: int, apply_chunk) -> None:
    """Stage the file unless staged already, then apply `apply_chunk(import id, stage, chunk_lines)` until it
    answers False (each call one chunk, one transaction)."""
    try:
        if started.total is None or not stage.ready(started):
            problems = stage.fill(started)
            if problems is not None:
                _finish(started, Import.Status.FAILED, error=problems, stage=stage)
                return
        while apply_chunk(started.pk, stage, chunk_lines):
            pass
        if started.kind == Import.Kind.MEMBERS and started.mode == Import.Mode.REPLACE:
            while _remove_unlisted(started.pk, stage, chunk_lines):
                pass
    except ImportFailed as exc:
        _finish(started, Import.Status.FAILED, error=str(exc), stage=stage)
        return
    except (OperationalError, InterfaceError):
        # The connection was lost, or a deadlock or a cancel ended the chunk: its transaction rolled back,
        # the import stays running, and the job's retry (segments/tasks.py) resumes it after `done`.
        logger.warning("import %s stopped by the database; its job will resume it", started.pk, exc_info=True)
        raise
    except Exception:
        logger.exception("import %s failed", started.pk)
        _finish(started, Import.Status.FAILED, error="Internal error; the lines applied so far stay.", stage=stage)
        raise
    _finish(started, Import.Status.SUCCEEDED, stage=stage)


def _start(import_id: int) -> Import | None:
    """Mark the import running; None when it has finished already."""
    with transaction.atomic():
        current = Import.objects.select_for_update().get(pk=import_id)
        if current.status in (Import.Status.SUCCEEDED, Import.Status.FAILED):
            return None
        current.status = Import.Status.RUNNING
        current.save(update_fields=["status"])
    return current


def _finish(current: Import, status: str, *, stage: "_Stage", error: str | dict | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        fields = {"status": status, "file_name": ""}
        if isinstance(error, dict):
            fields.update(error)
        elif error is not None:
            fields["error"] = error
        assignments = ", ".join(f"{name} = %s" for name in fields)
        cursor.execute(
            f"UPDATE segments_import SET {assignments}, finished_at = {CLOCK} WHERE id = %s",
            [*(_db_value(value) for value in fields.values()), current.pk],
        )
        stage.drop(cursor)
    try:
        import_file_delete(current.file_name)
    except OSError as exc:  # the import stands; the operator may delete the file by hand
        logger.warning("import %s: file %s not deleted: %s", current.pk, current.file_name, exc)


def _db_value(value):
    return json.dumps(value) if isinstance(value, list) else value


# --- Checking and staging ----------------------------------------------------------------------


class _Stage:
    """The import's staging table: `(n, user_id, expires_at)`, one row per user id (its first line),
    `n` counting the file's user id lines from 1. A plain table, unlogged (it is refilled from the
    file if a crash empties it), so that it outlives the transaction and the connection."""

    def __init__(self, import_id: int) -> None:
        self.table = f"segments_import_stage_{int(import_id)}"

    def ready(self, current: Import) -> bool:
        """Staged already (a resumed import), and not emptied since by a crash of the server."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [self.table])
            if not cursor.fetchone()[0]:
                return False
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {self.table})")
            return cursor.fetchone()[0] or current.total == 0

    def fill(self, current: Import) -> dict | None:
        """Parse every line of the file and stage the ids; the failed import's fields when a line is invalid."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT {CLOCK}")
            now = cursor.fetchone()[0]
            not_before = current.checked_at or now  # a resumed import is checked as it was the first time
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(
                # Dropped below, or with the transaction rolled back: nothing of it outlives this transaction.
                "CREATE TEMP TABLE segments_import_lines (n bigint, user_id bigint, expires_at timestamptz)"
            )
            # wrapped: a lost connection mid-COPY is Django's OperationalError, and the job's retry resumes
            with (
                connection.wrap_database_errors,
                cursor.copy("COPY segments_import_lines (n, user_id, expires_at) FROM STDIN") as copy,
            ):
                total, invalid, problems = _parse_file(current.file_name, copy, not_before)
            if invalid:
                transaction.set_rollback(True)
                return {
                    "invalid_lines": [{"line": line, "error": error} for line, error in problems],
                    "error": f"{invalid} invalid line{'s' if invalid > 1 else ''}; nothing was changed.",
                }
            cursor.execute(
                f"CREATE UNLOGGED TABLE {self.table} AS SELECT DISTINCT ON (user_id) n, user_id, expires_at"
                " FROM segments_import_lines ORDER BY user_id, n"
            )
            cursor.execute(f"CREATE INDEX ON {self.table} (n)")
            if current.mode == Import.Mode.REPLACE:
                cursor.execute(f"CREATE INDEX ON {self.table} (user_id)")
            cursor.execute("DROP TABLE segments_import_lines")
            cursor.execute(f"ANALYZE {self.table}")
            cursor.execute(
                "UPDATE segments_import SET total = %s, checked_at = %s WHERE id = %s", [total, not_before, current.pk]
            )
        current.total, current.checked_at = total, not_before
        return None

    def drop(self, cursor) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


def _parse_file(name: str, copy, not_before: datetime) -> tuple[int, int, list[tuple[int, str]]]:
    """Parse every line, write the valid ones to `copy` while none is invalid; (user id lines,
    invalid lines, the first MAX_PROBLEMS problems)."""
    total, invalid, problems, rows = 0, 0, [], []
    parser = LineParser(not_before)
    for number, raw in enumerate(import_file_lines(name), start=1):
        parsed = parser.parse(raw, number)
        if parsed is None:
            continue
        if isinstance(parsed, str):
            invalid += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append((number, parsed))
            continue
        total += 1
        if invalid:
            continue
        user_id, expires_at = parsed
        rows.append(f"{total}\t{user_id}\t{expires_at}\n" if expires_at else f"{total}\t{user_id}\t\\N\n")
        if len(rows) >= COPY_ROWS:
            copy.write("".join(rows))
            rows.clear()
    if rows and not invalid:
        copy.write("".join(rows))
    return total, invalid, problems


# --- Applying ----------------------------------------------------------------------------------


@dataclass
class _Counts:
    added: int = 0
    removed: int = 0
    already_member: int = 0
    unknown_users: int = 0
    registered: int = 0


def _locked(cursor, import_id: int) -> tuple[int, Import]:
    """Start a chunk's transaction: lock the segment (as a rollout does: one segment-wide change at a
    time), then the import; (segment id, import). The segment first, as its deletion takes it first.

    A chunk's statements join its lines to users and memberships by their indexes: hash joins would
    read the whole users table and every member of the segment again for each chunk (statistics
    taken before the import make the planner pick them), so a chunk's cost would grow with the
    tables, not with the chunk. Turned off for this transaction only (SET LOCAL).
    """
    _index_joins(cursor, True)
    current = Import.objects.only("segment_id").get(pk=import_id)
    cursor.execute("SELECT id FROM segments_segment WHERE id = %s FOR NO KEY UPDATE", [current.segment_id])
    if cursor.fetchone() is None:
        raise ImportFailed("The segment was deleted during the import.")
    return current.segment_id, Import.objects.select_for_update().get(pk=import_id)


def _index_joins(cursor, only: bool) -> None:
    """Make this transaction's statements join by indexes only (`_locked` says why), or let the planner choose
    again: the evaluation of users against segments (services/automatic.py) plans its own joins over segments'
    members, which nested loops alone would take minutes a chunk over."""
    value = "off" if only else "DEFAULT"
    cursor.execute(f"SET LOCAL enable_hashjoin TO {value}")
    cursor.execute(f"SET LOCAL enable_mergejoin TO {value}")


def _apply_chunk(import_id: int, stage: _Stage, chunk_lines: int) -> bool:
    """Apply the next chunk of lines and move `done` past it, in one transaction; False when none is left."""
    with transaction.atomic(), connection.cursor() as cursor:
        segment_id, current = _locked(cursor, import_id)
        if current.done >= current.total:
            return False
        with journal(source="import", actor=current.actor):
            lines = [current.done, min(current.done + chunk_lines, current.total)]  # n in (first, last]
            memberships_expire(segment_id=segment_id)
            counts = _Counts()
            if current.register and current.mode != Import.Mode.REMOVE:
                counts.registered = _register_listed(cursor, stage, lines, current.actor)
            cursor.execute(
                f"SELECT count(*), count(u.id) FROM {stage.table} i LEFT JOIN users_user u ON u.id = i.user_id"
                " WHERE i.n > %s AND i.n <= %s",
                lines,
            )
            rows, known = cursor.fetchone()
            counts.unknown_users = rows - known
            if counts.unknown_users and len(current.unknown_user_ids) < MAX_PROBLEMS:
                _list_unknown(cursor, stage, lines, current)
            if current.mode == Import.Mode.REMOVE:
                counts.removed = _remove_listed(cursor, stage, lines, segment_id, current.actor)
            else:
                counts.added = _add_listed(cursor, stage, lines, segment_id, current)
                counts.already_member = known - counts.added
            _count(cursor, import_id, counts, done=lines[1])
    return True


def _register_listed(cursor, stage: _Stage, lines: list[int], actor: str) -> int:
    """Register the chunk's users who are not registered yet, in one statement, and give them the
    rollouts that cover them (as users_register does for a list); returns how many were registered.
    The segment is locked already: segment, then the rollout lock shared, as a rollout takes them."""
    created = _insert_listed(cursor, stage, lines)
    if created:
        _index_joins(cursor, False)
        rollout_join_users(user_ids=created, actor=actor)
        _index_joins(cursor, True)
    return len(created)


def _insert_listed(cursor, stage: _Stage, lines: list[int]) -> list[int]:
    """Insert the chunk's users who are not registered yet, in one statement; their ids. The caller makes
    them join their segments in its transaction."""
    cursor.execute(
        f"INSERT INTO users_user (id, created_at) SELECT i.user_id, {CLOCK} FROM {stage.table} i"
        " WHERE i.n > %s AND i.n <= %s ORDER BY i.user_id ON CONFLICT (id) DO NOTHING RETURNING id",
        lines,
    )
    return [row[0] for row in cursor.fetchall()]


def _list_unknown(cursor, stage: _Stage, lines: list[int], current: Import) -> None:
    """Add the chunk's first unknown ids, in the file's order, to the import's first MAX_PROBLEMS."""
    cursor.execute(
        f"SELECT i.user_id FROM {stage.table} i WHERE i.n > %s AND i.n <= %s"
        " AND NOT EXISTS (SELECT 1 FROM users_user u WHERE u.id = i.user_id) ORDER BY i.n LIMIT %s",
        [*lines, MAX_PROBLEMS - len(current.unknown_user_ids)],
    )
    listed = current.unknown_user_ids + [row[0] for row in cursor.fetchall()]
    cursor.execute("UPDATE segments_import SET unknown_user_ids = %s WHERE id = %s", [json.dumps(listed), current.pk])


def _add_listed(cursor, stage: _Stage, lines: list[int], segment_id: int, current: Import) -> int:
    """Listed members get the line's expiry (or the TTL's, or none) and become manual, as a PATCH
    would do (ending their exclusions); the other known users are added. Returns how many were added."""
    expiry = None
    if current.ttl_seconds:
        cursor.execute(f"SELECT {CLOCK} + make_interval(secs => %s)", [current.ttl_seconds])
        expiry = cursor.fetchone()[0]
    new_expiry = "coalesce(i.expires_at, %s::timestamptz)"
    cursor.execute(  # a manual add ends an exclusion, as the PATCH's does
        f"DELETE FROM segments_exclusion e USING {stage.table} i"
        " WHERE i.n > %s AND i.n <= %s AND e.segment_id = %s AND e.user_id = i.user_id",
        [*lines, segment_id],
    )
    cursor.execute(
        f"UPDATE segments_membership m SET source = 'manual', expires_at = {new_expiry} FROM {stage.table} i"
        " WHERE i.n > %s AND i.n <= %s AND m.segment_id = %s AND m.user_id = i.user_id"
        f" AND (m.source, m.expires_at) IS DISTINCT FROM ('manual', {new_expiry})",
        [expiry, *lines, segment_id, expiry],
    )
    cursor.execute(
        "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
        f" SELECT i.user_id, %s, 'manual', {CLOCK}, {new_expiry}"
        f" FROM {stage.table} i JOIN users_user u ON u.id = i.user_id WHERE i.n > %s AND i.n <= %s"
        # In user id order: the index inserts go in key order (the file's order would scatter them), and
        # rows are locked in one order whoever locks them. KEY SHARE first, as the foreign key check
        # would take it at the end: a user being deleted is waited for and skipped rather than failing the chunk.
        " ORDER BY i.user_id FOR KEY SHARE OF u"
        " ON CONFLICT (user_id, segment_id) DO NOTHING",
        [segment_id, expiry, *lines],
    )
    return cursor.rowcount


def _remove_listed(cursor, stage: _Stage, lines: list[int], segment_id: int, actor: str) -> int:
    """Remove the listed members; an automatic one (source `rule` or `rollout`) is excluded, as a PATCH's
    removal excludes it. Returns how many were removed."""
    cursor.execute(
        "WITH removed AS ("
        f" DELETE FROM segments_membership m USING {stage.table} i"
        " WHERE i.n > %s AND i.n <= %s AND m.segment_id = %s AND m.user_id = i.user_id"
        " RETURNING m.user_id, m.source), excluded AS ("
        f" INSERT INTO segments_exclusion (user_id, segment_id, at, actor) SELECT user_id, %s, {CLOCK}, %s"
        " FROM removed WHERE source <> 'manual' ORDER BY user_id ON CONFLICT (segment_id, user_id) DO NOTHING)"
        " SELECT count(*) FROM removed",
        [*lines, segment_id, segment_id, actor],
    )
    return cursor.fetchone()[0]


def _remove_unlisted(import_id: int, stage: _Stage, chunk_lines: int) -> bool:
    """`replace`: remove up to `chunk_lines` manual members that the file does not list, in one
    transaction; False once none is left."""
    with transaction.atomic(), connection.cursor() as cursor:
        segment_id, current = _locked(cursor, import_id)
        memberships_expire(segment_id=segment_id)
        with journal(source="import", actor=current.actor):
            cursor.execute(
                "DELETE FROM segments_membership WHERE id IN ("
                " SELECT m.id FROM segments_membership m WHERE m.segment_id = %s AND m.source = 'manual'"
                f" AND NOT EXISTS (SELECT 1 FROM {stage.table} i WHERE i.user_id = m.user_id) LIMIT %s)",
                [segment_id, chunk_lines],
            )
            removed = cursor.rowcount
        _count(cursor, import_id, _Counts(removed=removed), done=current.done)
    return removed == chunk_lines


def _count(cursor, import_id: int, counts: _Counts, *, done: int) -> None:
    cursor.execute(
        "UPDATE segments_import SET done = %s, added = added + %s, removed = removed + %s,"
        " already_member = already_member + %s, unknown_users = unknown_users + %s, registered = registered + %s"
        " WHERE id = %s",
        [done, counts.added, counts.removed, counts.already_member, counts.unknown_users, counts.registered, import_id],
    )
