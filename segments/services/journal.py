"""Who changes memberships: the source and actor the membership journal writes to history and events.

The journal itself is the database's (migrations/sql/0014_membership_journal.sql): every statement that
adds or removes memberships writes their history rows, and the events app's triggers their events, in
that statement. What it cannot know is who is writing; `journal` tells it, for the transaction.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def journal(*, actor: str, source: str = "") -> Iterator[None]:
    """Within the block (and the transaction it opens, unless the caller's), memberships added or removed
    are written to history with `source` and `actor`, and segments created, changed or deleted name `actor`
    in their events (a block that writes only segments needs no source). Blocks nest: the outer one's
    source and actor hold again after the inner one."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('segments.source', true), current_setting('segments.actor', true),"
            " set_config('segments.source', %s, true), set_config('segments.actor', %s, true)",
            [source, actor],
        )
        outer_source, outer_actor, _, _ = cursor.fetchone()
        yield
        cursor.execute(
            "SELECT set_config('segments.source', %s, true), set_config('segments.actor', %s, true)",
            [outer_source or "", outer_actor or ""],
        )
