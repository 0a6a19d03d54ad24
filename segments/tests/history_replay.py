"""The history invariant: the memberships table equals the replay of the history events.

For every (user_id, segment_slug) the events, in time order, alternate added/removed, starting
with `added`, and the last one is `added` exactly when a membership exists. Works on any DB-API cursor, so
it checks the test database and a private cluster alike. Sweep due memberships first
(`memberships_expire()`): a due membership that is not swept yet has no `removed` event.
"""

# In time order, as reports list them (ties by id): a writer that timed its event before waiting for
# a lock that another writer held would show here as an operation twice in a row.
HISTORY_SQL = "SELECT user_id, segment_slug, operation FROM segments_historyevent ORDER BY at, id"
MEMBERSHIPS_SQL = "SELECT m.user_id, s.slug FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id"


def replay_problems(events, members: set[tuple[int, str]]) -> list[str]:
    """Every way `events` ((user_id, slug, operation) in time order) fail to replay to `members`."""
    last: dict[tuple[int, str], str] = {}
    problems = []
    for user_id, slug, operation in events:
        previous = last.get((user_id, slug), "removed")
        if operation == previous:
            problems.append(f"doubled {operation} for user {user_id} in {slug}")
        last[(user_id, slug)] = operation
    replayed = {pair for pair, operation in last.items() if operation == "added"}
    problems += [f"member without an added event: user {u} in {s}" for u, s in sorted(members - replayed)]
    problems += [f"added event without a membership: user {u} in {s}" for u, s in sorted(replayed - members)]
    return problems


def history_problems(cursor) -> list[str]:
    """Every way the data breaks the invariant, as readable lines; empty when it holds."""
    cursor.execute(HISTORY_SQL)
    events = cursor.fetchall()
    cursor.execute(MEMBERSHIPS_SQL)
    return replay_problems(events, {(user_id, slug) for user_id, slug in cursor.fetchall()})


def assert_history_replays(cursor) -> int:
    """Fail with the list of problems unless the invariant holds; returns how many events were checked."""
    problems = history_problems(cursor)
    assert not problems, f"{len(problems)} history problems, e.g.: {problems[:10]}"
    cursor.execute("SELECT count(*) FROM segments_historyevent")
    return cursor.fetchone()[0]


def assert_database_history_replays() -> int:
    """The invariant on Django's default database, after sweeping due memberships."""
    from django.db import connection

    from segments.services import memberships_expire

    memberships_expire()
    with connection.cursor() as cursor:
        return assert_history_replays(cursor)
