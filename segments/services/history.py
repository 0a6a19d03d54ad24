"""Writing history: every membership change goes through `changes_record`, in the same statement."""

from django.db import connection

from core.db import CLOCK


def changes_record(
    change_sql: str, params: list, *, operation: str, source: str, actor: str, returning: bool = False
) -> list[tuple[int, int]] | int:
    """Run `change_sql` (an INSERT or DELETE on memberships ending in
    `RETURNING user_id, segment_id, <at>`) and write one history event per row it changed, in one
    statement (a data-modifying CTE). `<at>` is `changed_at()` for a change that happens now.

    Returns the changed (user_id, segment_id) pairs when `returning`, else their count.
    """
    tail = "SELECT user_id, segment_id FROM changed" if returning else "SELECT count(*) FROM changed"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH changed AS ({change_sql}),
            logged AS (
                INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)
                SELECT c.user_id, s.slug, %s, %s, %s, c.at
                FROM changed c JOIN segments_segment s ON s.id = c.segment_id
            )
            {tail}
            """,
            [*params, operation, source, actor],
        )
        rows = cursor.fetchall()
    return [(row[0], row[1]) for row in rows] if returning else rows[0][0]


def changed_at() -> str:
    """`<clock> AS at` for the RETURNING list of a change that happens now: read per row, once the
    row is locked (after any writer it waited for committed), so history per membership follows commit order."""
    return f"{CLOCK} AS at"
