"""Producing a period's CSV: rows streamed from a cursor, or PostgreSQL's COPY for whole files.

Both paths write the same bytes (reports/tests prove it): the columns and the
quoting rule of `csv_format`, timestamps in UTC seconds, ordered by (at, id).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.db import connections

from reports import csv_format
from reports.periods import Period
from segments.models import HistoryEvent

CHUNK_ROWS = 2000
UTC_SECONDS = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


@dataclass(frozen=True)
class HistoryQuery:
    """The events of a period, optionally of one user and/or one segment slug."""

    period: Period
    user_id: int | None = None
    segment: str | None = None


def events(query: HistoryQuery, using: str = "default"):
    """The query's events, oldest first (ties by id)."""
    found = HistoryEvent.objects.using(using).filter(at__gte=query.period.start, at__lt=query.period.end)
    if query.user_id is not None:
        found = found.filter(user_id=query.user_id)
    if query.segment is not None:
        found = found.filter(segment_slug=query.segment)
    return found.order_by("at", "id")


def lines(query: HistoryQuery, *, detail: bool, using: str = "default") -> Iterator[str]:
    rows = events(query, using).values_list("user_id", "segment_slug", "operation", "at", "source", "actor")
    for row in rows.iterator(chunk_size=CHUNK_ROWS):
        yield csv_format.line(*row, detail=detail)


def chunks(texts: Iterable[str]) -> Iterator[tuple[bytes, int]]:
    """Lines grouped into UTF-8 chunks of up to CHUNK_ROWS lines, each with its line count."""
    buffer: list[str] = []
    for text in texts:
        buffer.append(text)
        if len(buffer) >= CHUNK_ROWS:
            yield "".join(buffer).encode(), len(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode(), len(buffer)


def copy_sql(query: HistoryQuery, *, detail: bool) -> tuple[str, list]:
    """The SELECT whose rows COPY writes: the same columns and order as `lines`."""
    where, params = ["at >= %s", "at < %s"], [query.period.start, query.period.end]
    if query.user_id is not None:
        where.append("user_id = %s")
        params.append(query.user_id)
    if query.segment is not None:
        where.append("segment_slug = %s")
        params.append(query.segment)
    # An empty actor must be written bare, and COPY writes only NULL bare (it quotes '').
    # An actor that could run as a spreadsheet formula gets a leading ' (as csv_format.quote does).
    actor = f"CASE WHEN {csv_format.FORMULA_SQL} THEN '''' || actor ELSE NULLIF(actor, '') END"
    columns = f"user_id, segment_slug, operation, {UTC_SECONDS}" + (f", source, {actor}" if detail else "")
    params = [csv_format.FORMULA_SQL_PATTERN, *params] if detail else params
    table = HistoryEvent._meta.db_table
    return f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} ORDER BY at, id", params


def copy_csv(out: BinaryIO, sql: str, params: list, using: str = "default") -> int:
    """Write the rows of `sql` to `out` as `;`-separated CSV; return how many."""
    connection = connections[using]
    # The raw cursor's errors are psycopg's own: wrapped, they are Django's DatabaseError like any
    # query's (a replica that goes away mid-COPY is then read again from the primary).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor  # psycopg 3: the parameters are bound client-side, as COPY needs
        with raw.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, DELIMITER ';')", params) as copy:
            for data in copy:
                out.write(data)
        return raw.rowcount


def write(out: BinaryIO, query: HistoryQuery, *, detail: bool, using: str = "default") -> int:
    """Write the query's lines to `out` without holding them in memory; return how many."""
    return copy_csv(out, *copy_sql(query, detail=detail), using)
