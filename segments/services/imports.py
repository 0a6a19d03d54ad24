"""Importing the members of a segment from a CSV file: streamed, staged, applied in one set-based statement.

The file has one user id per line, optionally followed by `,expires_at` (RFC 3339 with an offset).
Blank lines are skipped; a first line starting with `user_id` is taken as a header. In remove mode
the expiry column is checked for syntax and otherwise ignored.

"Nothing half-applied": the import is all or nothing. If any line is invalid, nothing is applied
and the result lists why by line number. Otherwise every valid line is applied in one
transaction; unknown users and repeated ids are skipped and counted, since they cannot be
applied by anyone (users are registered through the API, never created by an import).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from core.db import CLOCK
from core.errors import SegmentNotFound
from core.fields import MAX_USER_ID
from segments.services.expiry import memberships_expire
from segments.services.history import changed_at, changes_record

MODES = ("add", "remove")
MAX_PROBLEMS = 20
MAX_LINE_CHARS = 200
STAGE = "segments_import_stage"


@dataclass
class ImportResult:
    """Counts of an import. `changed` is added (add mode) or removed (remove mode) members;
    `unchanged` is already a member (add) or not a member (remove)."""

    slug: str
    mode: str
    applied: bool = False
    lines: int = 0
    changed: int = 0
    unchanged: int = 0
    unknown_users: int = 0
    repeated: int = 0
    invalid: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def memberships_import(
    *, slug: str, lines: Iterable[bytes | str], mode: str, actor: str, batch_size: int = 5000
) -> ImportResult:
    """Add (or remove) the users listed in `lines` to (from) segment `slug`; history source `import`.

    `lines` is read once, in batches of `batch_size`, so memory stays bounded however long
    the file. Already-members keep their expiry; a rollout member that is imported becomes a
    manual member (as with an add through the API).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    result = ImportResult(slug=slug, mode=mode)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM segments_segment WHERE slug = %s FOR NO KEY UPDATE", [slug])
            row = cursor.fetchone()
            if row is None:
                raise SegmentNotFound([slug])
            segment_id = row[0]
            cursor.execute(f"SELECT {CLOCK}")  # read after the lock, as every write reads the clock
            db_now = cursor.fetchone()[0]
            # An error rolls the transaction back, and the staging table with it.
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (line bigint, user_id bigint PRIMARY KEY, expires_at timestamptz)"
            )
            staged = _stage(cursor, lines, result, db_now if mode == "add" else None, batch_size)
            _count_unknown(cursor, result)
            result.repeated = staged.valid - staged.rows
            if not result.invalid:
                _apply(cursor, result, segment_id, actor)
                result.applied = True
            cursor.execute(f"DROP TABLE {STAGE}")
    result.problems.sort()
    del result.problems[MAX_PROBLEMS:]
    return result


@dataclass
class _Staged:
    valid: int = 0
    rows: int = 0


def _stage(cursor, lines, result: ImportResult, not_before: datetime | None, batch_size: int) -> _Staged:
    staged, batch = _Staged(), []
    for number, raw in enumerate(lines, start=1):
        result.lines = number
        parsed = _parse(raw, number, not_before)
        if parsed is None:
            continue
        if isinstance(parsed, str):
            result.invalid += 1
            if len(result.problems) < MAX_PROBLEMS:
                result.problems.append((number, parsed))
            continue
        staged.valid += 1
        batch.append(parsed)
        if len(batch) >= batch_size:
            staged.rows += _insert(cursor, batch)
            batch = []
    if batch:
        staged.rows += _insert(cursor, batch)
    return staged


def _parse(raw: bytes | str, number: int, not_before: datetime | None) -> tuple | str | None:
    """(line, user_id, expires_at), None for a line to skip, or the reason the line is invalid."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            return "not UTF-8 text"
    text = raw.strip()
    if not text or (number == 1 and text.lower().startswith("user_id")):
        return None
    if len(text) > MAX_LINE_CHARS:
        return f"longer than {MAX_LINE_CHARS} characters"
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > 2:
        return "expected 'user_id' or 'user_id,expires_at'"
    if not parts[0].isascii() or not parts[0].isdigit() or not 1 <= int(parts[0]) <= MAX_USER_ID:
        return f"invalid user id {parts[0][:40]!r}"
    expires_at = None
    if len(parts) == 2 and parts[1]:
        try:
            expires_at = parse_datetime(parts[1])
        except ValueError:
            expires_at = None
        if expires_at is None or expires_at.tzinfo is None:
            return f"invalid expires_at {parts[1][:40]!r}: use RFC 3339, e.g. 2030-01-01T00:00:00Z"
        if not_before is not None and expires_at <= not_before:
            return f"expires_at {parts[1][:40]!r} is in the past"
    return number, int(parts[0]), connection.ops.adapt_datetimefield_value(expires_at)


def _insert(cursor, batch: list[tuple]) -> int:
    """Stage one batch in one statement; a repeated user id keeps its first line."""
    cursor.execute(
        f"INSERT INTO {STAGE} (line, user_id, expires_at)"
        " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) ON CONFLICT (user_id) DO NOTHING",
        [list(column) for column in zip(*batch, strict=True)],
    )
    return cursor.rowcount


def _count_unknown(cursor, result: ImportResult) -> None:
    unknown = f"FROM {STAGE} i WHERE NOT EXISTS (SELECT 1 FROM users_user u WHERE u.id = i.user_id)"
    cursor.execute(f"SELECT count(*) {unknown}")
    result.unknown_users = cursor.fetchone()[0]
    cursor.execute(f"SELECT line, user_id {unknown} ORDER BY line LIMIT %s", [MAX_PROBLEMS])
    result.problems += [(line, f"unknown user {user_id}") for line, user_id in cursor.fetchall()]


def _apply(cursor, result: ImportResult, segment_id: int, actor: str) -> None:
    memberships_expire(segment_id=segment_id)
    known = f"SELECT i.user_id FROM {STAGE} i JOIN users_user u ON u.id = i.user_id"
    cursor.execute(f"SELECT count(*) FROM ({known}) k")
    known_count = cursor.fetchone()[0]
    if result.mode == "add":
        result.changed = changes_record(
            "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
            f" SELECT i.user_id, %s, 'manual', {CLOCK}, i.expires_at"
            f" FROM {STAGE} i JOIN users_user u ON u.id = i.user_id WHERE true"
            " ON CONFLICT (user_id, segment_id) DO NOTHING"
            f" RETURNING user_id, segment_id, {changed_at()}",
            [segment_id],
            operation="added",
            source="import",
            actor=actor,
        )
        cursor.execute(
            "UPDATE segments_membership SET source = 'manual'"
            f" WHERE segment_id = %s AND source = 'rollout' AND user_id IN (SELECT user_id FROM {STAGE})",
            [segment_id],
        )
    else:
        result.changed = changes_record(
            f"DELETE FROM segments_membership WHERE segment_id = %s AND user_id IN (SELECT user_id FROM {STAGE})"
            f" RETURNING user_id, segment_id, {changed_at()}",
            [segment_id],
            operation="removed",
            source="import",
            actor=actor,
        )
    result.unchanged = known_count - result.changed
