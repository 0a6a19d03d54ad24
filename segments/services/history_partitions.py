"""History by month: the monthly partitions of segments_historyevent (migration 0006).

Each month (UTC) is a partition `segments_historyevent_YYYY_MM`; a DEFAULT partition takes what
no month partition covers, so a write never fails for want of one. The worker creates the
partitions ahead and moves any month found in the DEFAULT partition into its own; old months go
whole, with DROP TABLE (`purge_history`).
"""

import re
from collections.abc import Iterator
from datetime import datetime

from django.db import connection, transaction

TABLE = "segments_historyevent"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTH_NAME = re.compile(rf"{TABLE}_([0-9]{{4}})_([0-9]{{2}})")
MONTHS_AHEAD = 3  # this month and three more exist at all times once the worker has run


def history_partitions() -> list[str]:
    """The month partitions' names, oldest first (the DEFAULT partition is not one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        return sorted(name for (name,) in cursor.fetchall() if MONTH_NAME.fullmatch(name))


def history_partitions_ensure() -> int:
    """Create the partitions of this month and MONTHS_AHEAD more, and of any month whose rows sit
    in the DEFAULT partition (moving them there); return how many were created. One transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE segments_history_partition_create(month AT TIME ZONE 'UTC'))
            FROM (
                SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC') FROM {DEFAULT_PARTITION}
                UNION
                SELECT generate_series(0, %s) * interval '1 month' + date_trunc('month', now() AT TIME ZONE 'UTC')
                ORDER BY 1
            ) AS months (month)
            """,
            [MONTHS_AHEAD],
        )
        return cursor.fetchone()[0]


def history_purge(*, before: datetime) -> Iterator[tuple[str, int]]:
    """Drop every month partition before the month starting at `before` (UTC), oldest first, each in
    its own short transaction, yielding (name, rows) as each goes; then delete the DEFAULT
    partition's rows before it, yielding (DEFAULT_PARTITION, rows)."""
    month = (before.year, before.month)
    for name in history_partitions():
        match = MONTH_NAME.fullmatch(name)
        if (int(match[1]), int(match[2])) >= month:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{name}"')
            rows = cursor.fetchone()[0]
            cursor.execute(f'DROP TABLE "{name}"')
        yield name, rows
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE at < %s", [before])
        rows = cursor.rowcount
    yield DEFAULT_PARTITION, rows
