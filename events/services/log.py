"""Reading the event log in commit order.

Writers give each event an id from a sequence when they insert it, but transactions commit in
another order: a reader that went by id could pass id 7 (committed) while id 6 (a slower
transaction) was still in flight, and never see 6. So readers go by `position`, which
`events_sequence` gives only to committed events, one sequencer at a time: each run numbers every
event that committed before it started and has no position yet, after the positions given before.
An event that commits later gets a later position, whatever its id. Within one run events are
numbered by id; changes of one user that lock it (PATCH, seed API, admin, deletion) take their ids
in the order they commit, so a user's events keep that order (docs/events.md).
"""

from django.db import connection, transaction

SEQUENCER_LOCK_KEY = 7_146_917_264  # any constant; one sequencer runs at a time


def events_sequence() -> int:
    """Give committed events without a position the next positions, in id order; returns how many.

    Safe from several processes at once: the one that does not get the lock returns 0 at once.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEQUENCER_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return 0
        # A new statement: its snapshot is taken now that the previous sequencer has committed.
        cursor.execute(
            """
            WITH base AS (SELECT coalesce(max(position), 0) AS last FROM events_event),
            todo AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events_event WHERE position IS NULL)
            UPDATE events_event e SET position = base.last + todo.n FROM base, todo WHERE e.id = todo.id
            """
        )
        return cursor.rowcount
