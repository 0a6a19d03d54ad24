"""What each webhook has received: the event log's retention and the backlog gauges of /metrics go by it;
delivered messages, with their delivery attempts, are kept as long as events are.

A webhook has received every event up to its *received position*: its `last_position` (the last
position put into one of its messages), or, while an events message of it is undelivered, the
position before that message's first event (its id is `msg_<webhook>_<first position>`,
events/services/delivery.py). Enabled and disabled webhooks alike: a disabled webhook's undelivered
events stay for its replay. A deleted webhook needs nothing (its messages went with it). Events
that a webhook's `event_types` or `segments` filters leave out are not needed by it.
"""

from django.conf import settings
from django.db import connection

from events.services.filters import wanted_sql

# (id, event_types, segments, received) of every webhook; a few index reads each.
RECEIVED_SQL = r"""
SELECT w.id, w.event_types, w.segments, least(w.last_position, (
    SELECT split_part(m.msg_id, '_', 3)::bigint - 1 FROM events_message m
    WHERE m.webhook_id = w.id AND m.delivered_at IS NULL AND m.msg_id ~ '^msg_[0-9]+_[0-9]+$'
    ORDER BY m.id LIMIT 1
)) AS received
FROM events_webhook w
"""

# An event `c` that webhook `w` still needs: past its received position and let through by its filters.
NEEDED_SQL = f"c.position > w.received AND {wanted_sql('c', 'w.event_types', 'w.segments')}"

PURGE_CHUNK = 10_000  # events examined (and at most deleted) per statement, each its own short transaction

# One chunk: the next PURGE_CHUNK events by position after %(after)s, up to the last one but one (the
# sequencer numbers after max(position): the last stays) and up to the lowest received position of a
# webhook without filters (it needs every later event); those older than %(before)s that no webhook
# needs are deleted. Returns the chunk's last position, whether it holds an event not older than
# %(before)s, and how many were deleted.
PURGE_SQL = f"""
WITH webhooks AS ({RECEIVED_SQL}),
upto AS (
    SELECT least(
        (SELECT max(position) - 1 FROM events_event),
        (SELECT min(received) FROM webhooks WHERE jsonb_array_length(event_types) = 0
                                              AND jsonb_array_length(segments) = 0)
    ) AS position
),
chunk AS (
    SELECT id, position, at, type, segment FROM events_event
    WHERE position > %(after)s AND position <= (SELECT position FROM upto)
    ORDER BY position LIMIT %(chunk)s
),
gone AS (
    DELETE FROM events_event e USING chunk c
    WHERE e.id = c.id AND c.at < %(before)s AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE {NEEDED_SQL})
    RETURNING 1
)
SELECT max(position), coalesce(bool_or(at >= %(before)s), false), (SELECT count(*) FROM gone) FROM chunk
"""


def events_purge(*, before=None) -> int:
    """Delete the events older than SEGMENTER_EVENT_RETENTION_DAYS (and than `before`, when given) that
    every webhook has received or does not need; returns how many. Chunks of PURGE_CHUNK events in
    position order, each its own statement; it stops at the first chunk holding a younger event (positions
    follow time but for the length of a transaction: what it leaves goes in a later run)."""
    cutoff = _retention_cutoff(before)
    with connection.cursor() as cursor:
        after, deleted = 0, 0
        while True:
            cursor.execute(PURGE_SQL, {"after": after, "chunk": PURGE_CHUNK, "before": cutoff})
            last, young, count = cursor.fetchone()
            deleted += count
            if last is None or young:
                return deleted
            after = last


MESSAGES_PURGE_CHUNK = 1_000  # messages deleted per statement, each its own short transaction

# One chunk: the oldest delivered messages delivered before %(before)s, with their delivery attempts.
# Undelivered messages stay whatever their age: they are what a webhook has not received (and replays).
MESSAGES_PURGE_SQL = """
WITH old AS (
    SELECT id FROM events_message WHERE delivered_at < %(before)s ORDER BY id LIMIT %(chunk)s
),
attempts AS (DELETE FROM events_delivery d USING old WHERE d.message_id = old.id)
DELETE FROM events_message m USING old WHERE m.id = old.id
"""


def messages_purge(*, before=None) -> int:
    """Delete the messages delivered more than SEGMENTER_EVENT_RETENTION_DAYS ago (and before `before`,
    when given), with their delivery attempts; returns how many messages. The delivery log of a webhook
    thus shows the attempts of its undelivered messages and of the last retention period."""
    cutoff = _retention_cutoff(before)
    deleted = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(MESSAGES_PURGE_SQL, {"before": cutoff, "chunk": MESSAGES_PURGE_CHUNK})
            deleted += cursor.rowcount
            if cursor.rowcount < MESSAGES_PURGE_CHUNK:
                return deleted


def _retention_cutoff(before):
    """The database's now() less SEGMENTER_EVENT_RETENTION_DAYS, or `before` when that is earlier."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - %s * interval '1 day'", [settings.SEGMENTER_EVENT_RETENTION_DAYS])
        (cutoff,) = cursor.fetchone()
    return cutoff if before is None else min(cutoff, before)


# Per webhook: log positions past its received one (events its filters leave out included, until it
# passes them), and the `at` of the oldest event it has not received: the first one past its received
# position, or the oldest not yet numbered (every webhook waits for those), whichever is older.
BACKLOG_SQL = f"""
WITH webhooks AS ({RECEIVED_SQL}),
top AS (SELECT coalesce(max(position), 0) AS last FROM events_event),
unnumbered AS (SELECT (SELECT at FROM events_event WHERE position IS NULL ORDER BY id LIMIT 1) AS at)
SELECT w.id, greatest(top.last - w.received, 0),
       coalesce(extract(epoch FROM now() - least(next.at, unnumbered.at))::float, 0)
FROM webhooks w CROSS JOIN top CROSS JOIN unnumbered
LEFT JOIN LATERAL (
    SELECT e.at FROM events_event e WHERE e.position > w.received ORDER BY e.position LIMIT 1
) next ON true
ORDER BY w.id
"""


def webhooks_backlog() -> list[tuple[int, int, float]]:
    """(webhook id, events behind, seconds since the oldest event it has not received, 0 when none) of
    every webhook; one query of index reads, no count."""
    with connection.cursor() as cursor:
        cursor.execute(BACKLOG_SQL)
        return cursor.fetchall()
