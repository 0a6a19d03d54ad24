"""Correctness checks around the load runs: one history row per real membership change."""

import psycopg2

SNAPSHOT = """
DROP TABLE IF EXISTS bench_before;
CREATE TABLE bench_before AS SELECT m.user_id, m.segment_id FROM segments_membership m
JOIN segments_segment s ON s.id = m.segment_id WHERE s.slug = ANY(%s)"""

# Per (user, segment) the PATCH events must alternate added/removed, start from the state before
# the run and end in the state after it; pairs without events must not have changed.
CHECK = """
WITH ev AS (
  SELECT h.user_id, s.id AS segment_id, h.operation,
         lag(h.operation) OVER w AS previous, row_number() OVER w AS n,
         count(*) OVER (PARTITION BY h.user_id, h.segment_slug) AS total
  FROM segments_historyevent h JOIN segments_segment s ON s.slug = h.segment_slug
  WHERE h.actor = %(actor)s
  WINDOW w AS (PARTITION BY h.user_id, h.segment_slug ORDER BY h.id)),
after AS (SELECT m.user_id, m.segment_id FROM segments_membership m
          JOIN segments_segment s ON s.id = m.segment_id WHERE s.slug = ANY(%(slugs)s)),
changed AS ((SELECT * FROM bench_before EXCEPT SELECT * FROM after)
            UNION ALL (SELECT * FROM after EXCEPT SELECT * FROM bench_before))
SELECT
  (SELECT count(*) FROM ev),
  (SELECT count(*) FROM ev WHERE previous = operation),
  (SELECT count(*) FROM ev LEFT JOIN bench_before b USING (user_id, segment_id)
   WHERE n = 1 AND (operation = 'added') = (b.user_id IS NOT NULL)),
  (SELECT count(*) FROM ev LEFT JOIN after a USING (user_id, segment_id)
   WHERE n = total AND (operation = 'added') <> (a.user_id IS NOT NULL)),
  (SELECT count(*) FROM changed c
   WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.user_id = c.user_id AND ev.segment_id = c.segment_id))
"""


def patch_slugs(count: int) -> list[str]:
    return [f"seg_{n}" for n in range(1, count + 1)]


def snapshot(dsn: str, slugs: list[str]) -> None:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(SNAPSHOT, [slugs])
    connection.close()


def history_check(dsn: str, actor: str, slugs: list[str]) -> dict[str, int]:
    """Counts of history rows and of violations (all zero when each real change wrote exactly one row)."""
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(CHECK, {"actor": actor, "slugs": slugs})
        events, repeated, bad_first, bad_last, unlogged = cursor.fetchone()
        cursor.execute("DROP TABLE bench_before")
    connection.close()
    return {
        "events": events,
        "repeated": repeated,
        "bad_first": bad_first,
        "bad_last": bad_last,
        "unlogged": unlogged,
    }
