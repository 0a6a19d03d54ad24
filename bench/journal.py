"""The membership journal's triggers, as the bench needs them: raw references written without them,
set-up writes that skip them, and the PATCH measured without its events.

The journal is the database's (segments/migrations/sql/0014_membership_journal.sql writes history from
each statement that changes memberships, events/migrations/sql/0006_event_journal.sql the events of each
history row and segment write); its triggers refuse a change that does not say who makes it
(`segments.source` and `segments.actor`, transaction settings).
"""

import psycopg2

# The journal's triggers by table: history from memberships, events from history.
TRIGGERS = {
    "segments_membership": ("segments_journal_added", "segments_journal_removed"),
    "segments_historyevent": ("events_from_history",),
}
# The events of history rows alone (the PATCH's only event writes).
EVENTS_TRIGGERS = {"segments_historyevent": ("events_from_history",)}


def triggers_sql(enable: bool, triggers: dict[str, tuple[str, ...]] = TRIGGERS) -> list[str]:
    """ALTER TABLE statements that enable or disable the triggers. In a transaction they hold for it
    alone (DDL is transactional): disabled then enabled again before its commit, no other session sees
    a change, it only waits for the table's lock."""
    verb = "ENABLE" if enable else "DISABLE"
    return [f"ALTER TABLE {table} {verb} TRIGGER {name}" for table, names in triggers.items() for name in names]


def raw(change: str, *, operation: str, source: str, actor: str) -> str:
    """One statement that writes a membership change, its history rows and their events by hand, as
    data-modifying CTEs: `change` is the INSERT or DELETE of memberships `RETURNING user_id, segment_id,
    at`. Run it with the journal's triggers disabled (`untriggered`), else they write history and events
    a second time."""
    return (
        f"WITH changed AS ({change}),\n"
        "logged AS (\n"
        "  INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)\n"
        f"  SELECT c.user_id, s.slug, '{operation}', '{source}', '{actor}', c.at\n"
        "  FROM changed c JOIN segments_segment s ON s.id = c.segment_id\n"
        "  RETURNING user_id, segment_slug, operation, source, actor, at),\n"
        "evented AS (\n"
        "  INSERT INTO events_event (type, user_id, segment, at, source, actor)\n"
        "  SELECT 'membership.' || l.operation, l.user_id, l.segment_slug, l.at, l.source, l.actor FROM logged l)\n"
        "SELECT count(*) FROM changed"
    )


def untriggered(sql: str) -> list[str]:
    """`sql` between the statements that disable the journal's triggers and enable them again: run the
    list in one transaction (psql -1). Its foreign keys are checked at the end of the statement, not at
    commit: a table with checks pending cannot be altered, and the work is the same."""
    return [*triggers_sql(enable=False), "SET CONSTRAINTS ALL IMMEDIATE", sql, *triggers_sql(enable=True)]


def unjournaled(dsn: str, sql: str, params=None) -> None:
    """Run the bench's own set-up write (a dataset, due memberships, a reset between rounds) without the
    journal: with `session_replication_role = replica` no trigger fires, so it writes no history or events
    that no one asked for, and needs no source or actor. (Foreign keys are not checked either: the set-up
    writes rows that hold by construction.)"""
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(sql, params)
    finally:
        connection.close()


def journaled(dsn: str, sql: str, params=None, *, actor: str = "bench", source: str = "manual") -> None:
    """Run a write in a transaction that says who makes it, so that the journal writes its history and
    events (a segment's creation becomes its `segment.created` event with `actor`)."""
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('segments.source', %s, true), set_config('segments.actor', %s, true)",
                [source, actor],
            )
            cursor.execute(sql, params)
    finally:
        connection.close()
