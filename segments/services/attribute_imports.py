"""Imports of users' attributes: the membership imports' machinery (imports.py: receiving, storing, the queue,
idempotency, checking whole, chunks, progress, resuming) with lines of attributes.

A file is NDJSON, one `{"user_id": …, "attributes": {…}}` a line, or CSV whose first line is the header
`user_id,key1,key2,…` (each cell a string, RFC 4180 quoting within a line; an empty cell leaves its key
out). Blank lines are skipped. `replace` makes each listed user's attributes the line's
(attributes_clean); `merge` applies the line as a JSON merge patch (RFC 7396, attributes_merge: null
deletes a key). A user listed on two lines makes the later line invalid: a file says once what a user's
attributes become.

The worker checks every line first (and, for merge, each result against the limits, from the stored
attributes): one invalid line fails the import and nothing changes. Then it applies the lines in chunks,
one transaction each, set-based, as an attribute write does (attributes_apply_chunk): the users not
registered are registered (`register`) or skipped and counted, the attributes written, and the registered
users evaluated against every segment, the others whose values changed against the rule segments.
"""

import csv
import json

from django.db import connection, transaction

from core.db import CLOCK
from core.errors import ValidationFailed
from core.fields import MAX_USER_ID
from segments.attributes import KEY, MAX_BYTES, MAX_KEYS, attributes_clean, attributes_merge
from segments.models import Import
from segments.services.automatic import automatic_apply
from segments.services.import_files import import_file_lines
from segments.services.imports import (
    COPY_ROWS,
    MAX_PROBLEMS,
    ImportFailed,
    _count,
    _Counts,
    _index_joins,
    _insert_listed,
    _list_unknown,
    _Stage,
)

# A line holds at most MAX_BYTES of compact attributes; as sent, escapes (`\u00e9`) and spaces may make it
# longer. A longer line is invalid.
MAX_LINE_BYTES = 128 * 1024
_MERGE = Import.ATTRIBUTE_MODES["merge"]
_NDJSON_FIELDS = {"user_id", "attributes"}


def _too_large_sql(value: str) -> str:
    """SQL: why the stored attributes `value` pass the limits, or NULL. Their compact JSON's size is the text
    the database prints less the space it puts after each `:` and `,`; objects of at most MAX_KEYS keys
    print shorter than the first test, so most values need no more than it."""
    return (
        f"CASE WHEN octet_length({value}::text) > {MAX_BYTES} OR octet_length({value}::text) > 7 * {MAX_KEYS}"
        f" THEN (SELECT CASE WHEN count(*) > {MAX_KEYS}"
        f" THEN format('At most {MAX_KEYS} keys; the result would have %%s.', count(*))"
        f" WHEN octet_length({value}::text) - greatest(2 * count(*) - 1, 0)"
        "  - coalesce(sum(jsonb_array_length(v) - 1) FILTER (WHERE jsonb_typeof(v) = 'array'"
        f"  AND jsonb_array_length(v) > 0), 0) > {MAX_BYTES}"
        f" THEN 'At most {MAX_BYTES:,} bytes of compact JSON; the result would have more.'"
        f" END FROM jsonb_each({value}) e(k, v)) END"
    )


# --- Checking and staging ----------------------------------------------------------------------


class AttributeStage(_Stage):
    """The import's staging table: `(n, line, user_id, attributes)`, one row per data line, `n` counting
    them from 1 and `line` the file's line number; `attributes` as the line's write will store them
    (replace) or the patch (merge)."""

    def fill(self, current: Import) -> dict | None:
        """Parse every line of the file and stage it; the failed import's fields when a line is invalid."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT {CLOCK}")
            not_before = current.checked_at or cursor.fetchone()[0]
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            # Created in this transaction: a failed check rolls it back with it.
            cursor.execute(
                f"CREATE UNLOGGED TABLE {self.table} (n bigint, line bigint, user_id bigint, attributes jsonb)"
            )
            with (
                connection.wrap_database_errors,
                cursor.copy(f"COPY {self.table} (n, line, user_id, attributes) FROM STDIN") as copy,
            ):
                total, invalid, problems = _parse_file(current.file_name, copy, merge=current.mode == _MERGE)
            if not invalid:
                invalid, problems = _repeated(cursor, self.table)
            if not invalid and current.mode == _MERGE and current.total is None:
                # Once: staged again after a crash, some chunks are in, and each chunk checks its own results.
                invalid, problems = _merged_too_large(cursor, self.table)
            if invalid:
                transaction.set_rollback(True)
                return {
                    "invalid_lines": [{"line": line, "error": error} for line, error in problems],
                    "error": f"{invalid} invalid line{'s' if invalid > 1 else ''}; nothing was changed.",
                }
            cursor.execute(f"CREATE INDEX ON {self.table} (n)")
            cursor.execute(f"ANALYZE {self.table}")
            cursor.execute(
                "UPDATE segments_import SET total = %s, checked_at = %s WHERE id = %s", [total, not_before, current.pk]
            )
        current.total, current.checked_at = total, not_before
        return None


def _repeated(cursor, table: str) -> tuple[int, list[tuple[int, str]]]:
    """The lines listing a user an earlier line lists: (how many, the first MAX_PROBLEMS)."""
    cursor.execute(
        "SELECT line, first, user_id, count(*) OVER () FROM ("
        f" SELECT line, user_id, min(line) OVER (PARTITION BY user_id) AS first FROM {table}) lines"
        " WHERE line > first ORDER BY line LIMIT %s",
        [MAX_PROBLEMS],
    )
    rows = cursor.fetchall()
    problems = [(line, f"user {user_id} is listed on line {first} already") for line, first, user_id, _ in rows]
    return (rows[0][3] if rows else 0), problems


def _merged_too_large(cursor, table: str) -> tuple[int, list[tuple[int, str]]]:
    """The merge lines whose result, from the stored attributes, would pass the limits."""
    cursor.execute(
        f"SELECT line, problem, count(*) OVER () FROM (SELECT i.line, {_too_large_sql('m.merged')} AS problem"
        f" FROM {table} i JOIN users_userattributes a ON a.user_id = i.user_id"
        " CROSS JOIN LATERAL (SELECT jsonb_strip_nulls(a.attributes || i.attributes) AS merged) m) checked"
        " WHERE problem IS NOT NULL ORDER BY line LIMIT %s",
        [MAX_PROBLEMS],
    )
    rows = cursor.fetchall()
    return (rows[0][2] if rows else 0), [(line, f"attributes: {problem}") for line, problem, _ in rows]


def _parse_file(name: str, copy, *, merge: bool) -> tuple[int, int, list[tuple[int, str]]]:
    """Parse every line, write the valid ones to `copy` while none is invalid; (data lines, invalid lines,
    the first MAX_PROBLEMS problems)."""
    total, invalid, problems, rows = 0, 0, [], []
    parser = _LineParser(merge=merge)
    for number, raw in enumerate(import_file_lines(name, max_line_bytes=MAX_LINE_BYTES), start=1):
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
        user_id, attributes = parsed
        text = json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).replace("\\", "\\\\")
        rows.append(f"{total}\t{number}\t{user_id}\t{text}\n")
        if len(rows) >= COPY_ROWS:
            copy.write("".join(rows))
            rows.clear()
    if rows and not invalid:
        copy.write("".join(rows))
    return total, invalid, problems


class _LineParser:
    """Parses a file's lines in order: line 1 decides the format (a header naming `user_id` first: CSV;
    anything else: NDJSON)."""

    def __init__(self, *, merge: bool) -> None:
        self.merge = merge
        self.columns: list[str] | None = None  # CSV's keys, after user_id

    def parse(self, raw: bytes, number: int) -> tuple[int, dict] | str | None:
        """(user_id, attributes to stage) of one line, None for a line to skip (blank, header), or why the
        line is invalid."""
        if len(raw) > MAX_LINE_BYTES:
            return f"longer than {MAX_LINE_BYTES:,} bytes"
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            return "not UTF-8 text"
        if not text:
            return None
        if number == 1 and not text.startswith("{"):
            return self._header(text)
        if self.columns is None:
            return self._json_line(text)
        return self._csv_line(text)

    def _header(self, text: str) -> str | None:
        try:
            names = [name.strip() for name in next(csv.reader([text], strict=True))]
        except csv.Error:
            return "a quoted field that does not end"
        if names[0] != "user_id":
            return "expected a JSON object, or a CSV header line user_id,key1,key2,…"
        bad = next((name for name in names[1:] if not KEY.fullmatch(name)), None)
        if bad is not None:
            return f"column {bad[:100]!r}: a key is 1 to 64 characters a-z, 0-9 and _, starting with a letter"
        if len(set(names)) < len(names):
            return "a column named twice in the header"
        self.columns = names[1:]
        return None

    def _csv_line(self, text: str) -> tuple[int, dict] | str:
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error:
            return "a quoted field that does not end (a cell holds no line break)"
        if len(cells) != len(self.columns) + 1:
            return f"expected {len(self.columns) + 1} cells, as the header names; found {len(cells)}"
        user_id = cells[0].strip()
        if not user_id.isascii() or not user_id.isdigit() or not 1 <= int(user_id) <= MAX_USER_ID:
            return f"invalid user id {user_id[:40]!r}"
        attributes = {key: cell for key, cell in zip(self.columns, cells[1:], strict=True) if cell != ""}
        return self._checked(int(user_id), attributes)

    def _json_line(self, text: str) -> tuple[int, dict] | str:
        try:
            item = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return f"not JSON: {str(exc)[:200]}"
        if not isinstance(item, dict) or set(item) != _NDJSON_FIELDS:
            return 'expected an object {"user_id": …, "attributes": {…}}'
        user_id = item["user_id"]
        if type(user_id) is not int or not 1 <= user_id <= MAX_USER_ID:
            return f"invalid user id {json.dumps(user_id)[:40]}"
        return self._checked(user_id, item["attributes"])

    def _checked(self, user_id: int, attributes) -> tuple[int, dict] | str:
        try:
            if self.merge:
                attributes_merge(current={}, patch=attributes)  # the patch, and the least its result holds
                return user_id, attributes
            return user_id, attributes_clean(attributes=attributes)
        except ValidationFailed as exc:
            return exc.detail


# --- Applying ----------------------------------------------------------------------------------


def attributes_apply_chunk(import_id: int, stage: AttributeStage, chunk_lines: int) -> bool:
    """Apply the next chunk of lines and move `done` past it, in one transaction; False when none is left.

    As an attribute write does (users/attribute_writes.py): the users not registered are inserted (`register`),
    the chunk's users locked in id order (FOR NO KEY UPDATE: one user's writes serialise), the attributes
    written, then the registered users evaluated against every segment (rollouts and rules) and the others
    whose attributes changed against the rule segments (services/automatic.py). Its statements join the
    lines to users and attributes by their indexes (imports._locked says why)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _index_joins(cursor, True)
        current = Import.objects.select_for_update().get(pk=import_id)
        if current.done >= current.total:
            return False
        lines = [current.done, min(current.done + chunk_lines, current.total)]  # n in (first, last]
        created = _insert_listed(cursor, stage, lines) if current.register else []
        cursor.execute(
            f"SELECT u.id FROM {stage.table} i JOIN users_user u ON u.id = i.user_id WHERE i.n > %s AND i.n <= %s"
            " ORDER BY u.id FOR NO KEY UPDATE OF u",
            lines,
        )
        known = len(cursor.fetchall())
        counts = _Counts(registered=len(created), unknown_users=lines[1] - lines[0] - known)
        if counts.unknown_users and len(current.unknown_user_ids) < MAX_PROBLEMS:
            _list_unknown(cursor, stage, lines, current)
        changed = _merge(cursor, stage, lines) if current.mode == _MERGE else _replace(cursor, stage, lines)
        _index_joins(cursor, False)  # for the evaluation
        new = set(created)
        joined = _rules_apply(actor=current.actor, user_ids=sorted(new), rules_only=False)
        rules = _rules_apply(actor=current.actor, user_ids=sorted(set(changed) - new), rules_only=True)
        # The columns an attribute import keeps its counts in (Import.ATTRIBUTE_COUNTS).
        counts.added, counts.already_member, counts.removed = known - len(created), joined[0] + rules[0], rules[1]
        _count(cursor, import_id, counts, done=lines[1])
    return True


def _replace(cursor, stage: AttributeStage, lines: list[int]) -> list[int]:
    """Write the chunk's known users' attributes in one statement; the users whose attributes changed."""
    cursor.execute(
        "INSERT INTO users_userattributes AS a (user_id, attributes, updated_at)"
        f" SELECT i.user_id, i.attributes, {CLOCK} FROM {stage.table} i JOIN users_user u ON u.id = i.user_id"
        " WHERE i.n > %s AND i.n <= %s ORDER BY i.user_id"
        " ON CONFLICT (user_id) DO UPDATE SET attributes = EXCLUDED.attributes, updated_at = EXCLUDED.updated_at"
        " WHERE a.attributes IS DISTINCT FROM EXCLUDED.attributes RETURNING a.user_id",
        lines,
    )
    return [row[0] for row in cursor.fetchall()]


def _merge(cursor, stage: AttributeStage, lines: list[int]) -> list[int]:
    """Apply the chunk's patches to its known users (locked already) in two statements: the stored
    attributes merged where they are, then the users without any stored (the patch without its nulls;
    merged into a row that a writer not locking the user inserted meanwhile). A result past the limits
    (a write since the check) fails the import: this chunk is rolled back, those before it stay. Returns
    the users whose attributes changed."""
    merged = "jsonb_strip_nulls(a.attributes || i.attributes)"
    cursor.execute(
        f"UPDATE users_userattributes a SET attributes = {merged}, updated_at = {CLOCK} FROM {stage.table} i"
        f" WHERE i.n > %s AND i.n <= %s AND a.user_id = i.user_id AND {merged} IS DISTINCT FROM a.attributes"
        f" RETURNING a.user_id, i.line, {_too_large_sql('a.attributes')}",
        lines,
    )
    updated = cursor.fetchall()
    patch = f"(SELECT i.attributes FROM {stage.table} i WHERE i.n > %s AND i.n <= %s AND i.user_id = a.user_id)"
    cursor.execute(
        "INSERT INTO users_userattributes AS a (user_id, attributes, updated_at)"
        f" SELECT i.user_id, jsonb_strip_nulls(i.attributes), {CLOCK}"
        f" FROM {stage.table} i JOIN users_user u ON u.id = i.user_id WHERE i.n > %s AND i.n <= %s"
        " AND NOT EXISTS (SELECT 1 FROM users_userattributes x WHERE x.user_id = i.user_id) ORDER BY i.user_id"
        f" ON CONFLICT (user_id) DO UPDATE SET attributes = jsonb_strip_nulls(a.attributes || {patch}),"
        f" updated_at = EXCLUDED.updated_at RETURNING a.user_id, NULL, {_too_large_sql('a.attributes')}",
        [*lines, *lines],
    )
    written = updated + cursor.fetchall()
    too_large = next((row for row in written if row[2] is not None), None)
    if too_large is not None:
        user_id, line, problem = too_large
        raise ImportFailed(
            f"Line {line or f'of user {user_id}'}: attributes: {problem} (written since the import was checked);"
            " the lines before this chunk were applied."
        )
    return [row[0] for row in written]


def _rules_apply(*, actor: str, user_ids: list[int], rules_only: bool) -> tuple[int, int]:
    """Evaluate `user_ids` against the rule segments (`rules_only`) or every segment, in the caller's
    transaction; (user–segment pairs entered, left)."""
    if not user_ids:
        return 0, 0
    result = automatic_apply(actor=actor, user_ids=user_ids, rules_only=rules_only)
    return result.added, result.removed
