"""Writing history and events: every membership change goes through `changes_record`, in the same statement.

The events table (`events_event`, owned by the events app) is written here by name, so that each
event is in the same statement and transaction as its history row; segments never import events.
"""

import json

from django.db import connection

from core.db import CLOCK


def changes_record(
    change_sql: str, params: list, *, operation: str, source: str, actor: str, returning: bool = False
) -> list[tuple[int, int]] | int:
    """Run `change_sql` (an INSERT or DELETE on memberships ending in
    `RETURNING user_id, segment_id, <at>`) and write one history event per row it changed, in one
    statement (a data-modifying CTE), and its event with the same `at`. `<at>` is `changed_at()` for
    a change that happens now.

    Returns the changed (user_id, segment_id) pairs when `returning`, else their count.
    """
    tail = "SELECT user_id, segment_id FROM changed" if returning else "SELECT count(*) FROM changed"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH changed AS ({change_sql}),
            named AS (
                SELECT c.user_id, s.slug, c.at FROM changed c JOIN segments_segment s ON s.id = c.segment_id
            ),
            logged AS (
                INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)
                SELECT user_id, slug, %s, %s, %s, at FROM named
            ),
            evented AS (
                INSERT INTO events_event (type, user_id, segment, at, source, actor)
                SELECT %s, user_id, slug, at, %s, %s FROM named
            )
            {tail}
            """,
            [*params, operation, source, actor, f"membership.{operation}", source, actor],
        )
        rows = cursor.fetchall()
    return [(row[0], row[1]) for row in rows] if returning else rows[0][0]


def changed_at() -> str:
    """`<clock> AS at` for the RETURNING list of a change that happens now: read per row, once the
    row is locked (after any writer it waited for committed), so history per membership follows commit order."""
    return f"{CLOCK} AS at"


def segment_event_record(*, segment_id: int, type: str, actor: str, changes: dict | None = None) -> None:
    """Write a `segment.created|updated|deleted` event of a segment that still exists, at the clock
    now (read after the caller's lock on the segment), in the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (type, segment, at, actor, changes)"
            f" SELECT %s, slug, {CLOCK}, %s, %s::jsonb FROM segments_segment WHERE id = %s",
            [f"segment.{type}", actor, None if changes is None else json.dumps(changes), segment_id],
        )
