"""Writing history: every membership change goes through `changes_record`, in the same transaction."""

from django.db import connection

from segmenter.db import is_postgres, now_sql


def changes_record(
    change_sql: str, params: list, *, operation: str, source: str, actor: str, returning: bool = False
) -> list[tuple[int, int]] | int:
    """Run `change_sql` (an INSERT or DELETE on memberships ending in
    `RETURNING user_id, segment_id, <at>`) and write one history event per row it changed.

    One statement on PostgreSQL (a data-modifying CTE); a fallback with two on SQLite.
    Returns the changed (user_id, segment_id) pairs when `returning`, else their count.
    """
    with connection.cursor() as cursor:
        if is_postgres():
            tail = "SELECT user_id, segment_id FROM changed" if returning else "SELECT count(*) FROM changed"
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
        cursor.execute(change_sql, params)
        rows = cursor.fetchall()
        cursor.executemany(
            "INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at) "
            "SELECT %s, slug, %s, %s, %s, %s FROM segments_segment WHERE id = %s",
            [(user_id, operation, source, actor, at, segment_id) for user_id, segment_id, at in rows],
        )
        return [(row[0], row[1]) for row in rows] if returning else len(rows)


def now_column() -> str:
    """`<db now> AS at`, for the RETURNING list of a change that happens now."""
    return f"{now_sql()} AS at"
