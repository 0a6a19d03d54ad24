"""The CSV format of API.md, byte for byte: `;`-separated, `\\n`-terminated, UTF-8, times in UTC seconds.

`user_id;segment;operation;at`, plus `;source;actor` in detail mode. Only the actor (a token
name or an admin username) can hold a `;`, a quote or a line break; such a value is quoted
the RFC 4180 way: wrapped in double quotes, with each double quote doubled (`a;b` becomes
`"a;b"`), which is also what PostgreSQL's COPY ... CSV writes. An actor that a spreadsheet
would run as a formula (starting with `= + - @`, a tab or a carriage return, once normalised
with NFKC, so that a full-width `＝` or a small `﹢` counts too) gets a leading `'`, so that
opening the file cannot execute it. The actor itself is written as it is stored.
"""

import unicodedata
from datetime import UTC, datetime

COLUMNS = ("user_id", "segment", "operation", "at")
DETAIL_COLUMNS = ("source", "actor")
_SPECIAL = (";", '"', "\n", "\r")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def header(*, detail: bool) -> str:
    return ";".join(COLUMNS + DETAIL_COLUMNS if detail else COLUMNS) + "\n"


def timestamp(at: datetime) -> str:
    """`2023-08-31T10:25:04Z`: UTC, fractions of a second dropped (as `to_char` does)."""
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}Z"


def is_formula(value: str) -> bool:
    """True when a spreadsheet could read `value` as a formula (in SQL: `FORMULA_SQL`)."""
    return unicodedata.normalize("NFKC", value).startswith(FORMULA_START)


# The same test in SQL, on the column `actor`, for COPY: PostgreSQL's normalize() and a regular
# expression built from FORMULA_START (its parameter); reports/tests compare the two rules over
# every code point.
FORMULA_SQL_PATTERN = "^[" + "".join(sorted(FORMULA_START, key=lambda char: char != "-")) + "]"
FORMULA_SQL = "normalize(actor, NFKC) ~ %s"


def quote(value: str) -> str:
    if is_formula(value):
        value = "'" + value
    if any(char in value for char in _SPECIAL):
        return '"' + value.replace('"', '""') + '"'
    return value


def line(user_id: int, segment: str, operation: str, at: datetime, source: str, actor: str, *, detail: bool) -> str:
    text = f"{user_id};{segment};{operation};{timestamp(at)}"
    if detail:
        text += f";{source};{quote(actor)}"
    return text + "\n"
