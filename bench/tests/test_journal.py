"""The bench's references written without the journal's triggers, and the PATCH without its events."""

import pytest
from django.db import connection

from bench.bulk import BUCKET, EXPIRE_SQL, ROLLOUT_SQL
from bench.journal import untriggered
from bench.webhooks import events_trigger
from events.models import Event
from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, memberships_update
from segments.services.rollout import is_covered
from users.models import User


@pytest.fixture
def segment(db) -> Segment:
    User.objects.bulk_create([User(id=i) for i in range(1, 201)])
    return Segment.objects.create(slug="bench_rollout_a")


def _run(statements: list[str]) -> int:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            if cursor.description:
                counted = cursor.fetchone()[0]
    return counted


def _journal(slug: str) -> tuple[list, list]:
    history = HistoryEvent.objects.filter(segment_slug=slug).values_list("user_id", "operation", "source", "actor")
    events = Event.objects.filter(segment=slug).exclude(type__startswith="segment.")
    return sorted(history), sorted(events.values_list("user_id", "type", "source", "actor"))


def test_rollout_sql__untriggered__the_covered_users_with_one_history_row_and_one_event_each(segment):
    sql = ROLLOUT_SQL.format(
        segment_id=segment.pk, slug=segment.slug, limit=1000, bucket=BUCKET.format(slug=segment.slug)
    )
    covered = [user_id for user_id in range(1, 201) if is_covered(segment.slug, user_id, 10)]

    assert _run(untriggered(sql)) == len(covered) > 0
    assert sorted(Membership.objects.filter(segment=segment).values_list("user_id", flat=True)) == covered
    history, events = _journal(segment.slug)
    assert history == [(user_id, "added", "rollout", "bench-sql") for user_id in covered]
    assert events == [(user_id, "membership.added", "rollout", "bench-sql") for user_id in covered]


def test_expire_sql__untriggered__the_due_memberships_with_one_ttl_row_and_one_event_each(segment):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # due memberships, unjournaled
        cursor.execute(
            "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
            " SELECT id, %s, 'manual', now() - interval '2 days', now() - CASE WHEN id <= 3 THEN interval '1 hour'"
            " ELSE interval '-1 hour' END FROM users_user",
            [segment.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")

    assert _run(untriggered(EXPIRE_SQL)) == 3
    assert Membership.objects.filter(segment=segment).count() == 197
    history, events = _journal(segment.slug)
    assert history == [(user_id, "removed", "ttl", "system") for user_id in (1, 2, 3)]
    assert events == [(user_id, "membership.removed", "ttl", "system") for user_id in (1, 2, 3)]
    removed = HistoryEvent.objects.filter(segment_slug=segment.slug).values_list("at", flat=True)
    assert len(set(removed)) == 1  # at = expires_at, the same hour ago for the three


def test_events_trigger__disabled__the_patch_writes_its_history_and_no_event(segment):
    with connection.cursor() as cursor:
        cursor.execute(events_trigger(enable=False))
        memberships_update(user_id=7, add=[AddItem(segment.slug)], remove=[], source="api", actor="bench")
        cursor.execute(events_trigger(enable=True))
    memberships_update(user_id=8, add=[AddItem(segment.slug)], remove=[], source="api", actor="bench")

    history, events = _journal(segment.slug)
    assert history == [(7, "added", "api", "bench"), (8, "added", "api", "bench")]
    assert events == [(8, "membership.added", "api", "bench")]
