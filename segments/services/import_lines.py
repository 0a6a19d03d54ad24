"""The one parser of import files' lines: what the service writes, it reads.

A line is a user id, optionally `,expires_at` (RFC 3339 with an offset); blank lines are skipped.
A first line naming `user_id` is a header naming the columns, `,`- or `;`-separated, in
any order, from COLUMNS: the admin's member export (`user_id,expires_at,source,added_at`) and a
report (`user_id;segment;operation;at[;source;actor]`) read back as they were written. Only
`user_id` and `expires_at` are read; the other known columns are ignored, an unknown one fails
the header line. Without a header, a line holding a `;` is a report's line (its first column is
the user id, the others are ignored), any other is `user_id[,expires_at]`. In a `;`-separated
line a field in double quotes may hold the separator (a report quotes such an actor), as RFC 4180
says; a `,`-separated line has no quoting (the member export needs none).
"""

import csv
from dataclasses import dataclass
from datetime import datetime

from django.utils.dateparse import parse_datetime

from core.fields import MAX_USER_ID
from segments.services.memberships import expiry_problem

MAX_LINE_CHARS = 200
# The admin's member export (segments/admin/views.py) and a report's detail columns (reports/csv_format.py);
# segments/tests/test_import_lines.py reads both back.
COLUMNS = ("user_id", "expires_at", "source", "added_at", "segment", "operation", "at", "actor")
BARE_FORMAT = "expected 'user_id' or 'user_id,expires_at' (or a header line naming the columns)"


@dataclass(frozen=True)
class _Layout:
    separator: str
    user_id: int  # the columns' indexes
    expires_at: int | None
    columns: int
    expected: str  # what a line with too many columns is told


_BARE = _Layout(",", 0, 1, 2, BARE_FORMAT)
_REPORT = _Layout(";", 0, None, 6, "expected a report's line: user_id;segment;operation;at[;source;actor]")

Parsed = tuple[int, str | None] | str | None


class LineParser:
    """Parses a file's lines in order (line 1 may set the columns); `not_before` is the clock that
    expiries must pass, None for no such check."""

    def __init__(self, not_before: datetime | None) -> None:
        self.not_before = not_before
        self.header: _Layout | None = None

    def parse(self, raw: bytes, number: int) -> Parsed:
        """(user_id, expires_at as ISO text or None) of one line, None for a line to skip (blank,
        header), or why the line is invalid."""
        if raw.isdigit() and len(raw) <= 19 and (self.header is None or self.header.user_id == 0):
            user_id = int(raw)  # the common line, a bare id: no decoding, no splitting
            return (user_id, None) if 1 <= user_id <= MAX_USER_ID else f"invalid user id {raw.decode()!r}"
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            return "not UTF-8 text"
        if not text:
            return None
        if len(text) > MAX_LINE_CHARS:
            return f"longer than {MAX_LINE_CHARS} characters"
        if number == 1 and "user_id" in text.lower():
            return self._read_header(text)
        layout = self.header or (_REPORT if ";" in text else _BARE)
        return self._read(text, layout)

    def _read_header(self, text: str) -> str | None:
        separator = ";" if ";" in text else ","
        names = [name.strip().lower() for name in text.split(separator)]
        unknown = [name for name in names if name not in COLUMNS]
        if unknown:
            return f"unknown column {unknown[0][:40]!r} in the header: known are {', '.join(COLUMNS)}"
        if len(set(names)) < len(names):
            return "a column named twice in the header"
        if names == ["user_id"]:  # as no header: lines may still give an expiry after a comma
            return None
        expires_at = names.index("expires_at") if "expires_at" in names else None
        expected = f"expected at most {len(names)} columns, as the header names"
        self.header = _Layout(separator, names.index("user_id"), expires_at, len(names), expected)
        return None

    def _read(self, text: str, layout: _Layout) -> Parsed:
        if '"' in text and layout.separator == ";":  # only a report quotes (an actor)
            try:
                parts = next(csv.reader([text], delimiter=layout.separator, strict=True))
            except csv.Error:
                return "a quoted field that does not end"
        else:
            parts = text.split(layout.separator)
        parts = [part.strip() for part in parts]
        if len(parts) > layout.columns:
            return layout.expected
        user_id = parts[layout.user_id] if layout.user_id < len(parts) else ""
        if not user_id.isascii() or not user_id.isdigit() or not 1 <= int(user_id) <= MAX_USER_ID:
            return f"invalid user id {user_id[:40]!r}"
        if layout.expires_at is None or layout.expires_at >= len(parts) or not parts[layout.expires_at]:
            return int(user_id), None
        return self._expiry(int(user_id), parts[layout.expires_at])

    def _expiry(self, user_id: int, text: str) -> Parsed:
        try:
            expires_at = parse_datetime(text)
        except ValueError:
            expires_at = None
        if expires_at is None or expires_at.tzinfo is None:
            return f"invalid expires_at {text[:40]!r}: use RFC 3339, e.g. 2030-01-01T00:00:00Z"
        if problem := expiry_problem(expires_at, not_before=self.not_before):
            return f"expires_at {text[:40]!r} {problem}"
        return user_id, expires_at.isoformat()
