"""The event log: one event per history row from every writer, segment events, commit-order positions."""

import io
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Event
from events.services.log import events_sequence
from segments.models import HistoryEvent, Membership, Segment
from segments.services import (
    AddItem,
    import_create,
    import_run,
    memberships_expire,
    memberships_update,
    rollout_apply,
    segment_create,
    segment_delete,
    segment_update,
)
from users.models import User
from users.services import user_delete, users_register

HISTORY = ("user_id", "segment_slug", "operation", "source", "actor", "at")


def membership_events() -> list[tuple]:
    rows = Event.objects.filter(type__startswith="membership.").order_by("id")
    return [(e.user_id, e.segment, e.type.removeprefix("membership."), e.source, e.actor, e.at) for e in rows]


@pytest.mark.django_db
def test_every_writer__one_event_per_history_row__same_fields_and_instant(users, segment):
    memberships_update(user_id=1, add=[AddItem(slug="S1", ttl_seconds=60)], remove=[], source="api", actor="a")
    memberships_update(user_id=2, add=[AddItem(slug="S1")], remove=[], source="admin", actor="pm")
    memberships_update(user_id=2, add=[], remove=["S1"], source="api", actor="a")
    Membership.objects.filter(user_id=1).update(expires_at=timezone.now() - timedelta(seconds=1))
    memberships_expire()
    queued, _ = import_create(slug="S1", body=io.BytesIO(b"1\n3\n"), format="csv", mode="add", actor="imp")
    assert import_run(queued.pk).added == 2
    rollout_apply(slug="S1", percent=Decimal(50), actor="r")
    users_register(user_ids=list(range(10, 30)), actor="reg")
    user_delete(user_id=3, actor="del")
    segment_delete(slug="S1", actor="del")

    history = list(HistoryEvent.objects.order_by("id").values_list(*HISTORY))
    sources = {row[3] for row in history}
    assert sources == {"api", "admin", "ttl", "rollout", "import", "user_deleted", "segment_deleted"}
    assert membership_events() == history


@pytest.mark.django_db
def test_memberships_update__due_membership_and_add__ttl_event_first_at_its_expiry(users, segment):
    memberships_update(user_id=1, add=[AddItem(slug="S1", ttl_seconds=60)], remove=[], source="api", actor="a")
    Membership.objects.filter(user_id=1).update(expires_at=timezone.now() - timedelta(seconds=1))
    memberships_update(user_id=1, add=[AddItem(slug="S1")], remove=[], source="api", actor="a")
    types = [(e[2], e[3]) for e in membership_events()]
    assert types == [("added", "api"), ("removed", "ttl"), ("added", "api")]
    assert membership_events() == list(HistoryEvent.objects.order_by("id").values_list(*HISTORY))


@pytest.mark.django_db
def test_segment_services__create_update_rollout_delete__segment_events_with_changes(users):
    segment_create(slug="S9", description="first", rollout_percent=Decimal("12.5"), actor="pm")
    segment_update(slug="S9", description="second", actor="pm")
    rollout_apply(slug="S9", percent=Decimal(40), actor="pm")
    rollout_apply(slug="S9", percent=Decimal(40), actor="pm")  # unchanged: no event
    segment_delete(slug="S9", actor="pm")

    found = [(e.type, e.changes, e.actor) for e in Event.objects.filter(type__startswith="segment.").order_by("id")]
    assert found == [
        (
            "segment.created",
            {"description": [None, "first"], "rollout_percent": [None, 12.5], "rule": [None, None]},
            "pm",
        ),
        ("segment.updated", {"description": ["first", "second"]}, "pm"),
        ("segment.updated", {"rollout_percent": [12.5, 40.0]}, "pm"),
        ("segment.deleted", None, "pm"),
    ]
    last = Event.objects.order_by("-id").first()
    assert last.type == "segment.deleted"  # after every removal of its members


@pytest.mark.django_db
def test_memberships_update__rolled_back__no_event(users, segment):
    with pytest.raises(RuntimeError), transaction.atomic():
        memberships_update(user_id=1, add=[AddItem(slug="S1")], remove=[], source="api", actor="a")
        raise RuntimeError("roll back")
    assert not Event.objects.filter(type__startswith="membership.").exists()


@pytest.mark.django_db
def test_rollout_apply__many_users__same_statements_as_few(segment):
    def statements(count: int, start: int) -> int:
        User.objects.bulk_create([User(id=start + n) for n in range(count)])
        with CaptureQueriesContext(connection) as queries:
            rollout_apply(slug="S1", percent=Decimal(100), actor="r")
        rollout_apply(slug="S1", percent=Decimal(0), actor="r")
        return len(queries)

    assert statements(5, 1) == statements(2000, 1000)
    assert Event.objects.filter(source="rollout", type="membership.added").count() == 5 + 2005


@pytest.mark.django_db(transaction=True)
def test_events_sequence__slower_transaction_with_lower_id__not_skipped(users, segment):
    Segment.objects.create(slug="S2")
    events_sequence()  # the segments' own events
    slow_inserted, fast_done = threading.Event(), threading.Event()

    def slow() -> None:
        try:
            with transaction.atomic():
                memberships_update(user_id=1, add=[AddItem(slug="S1")], remove=[], source="api", actor="slow")
                slow_inserted.set()
                fast_done.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow)
    thread.start()
    assert slow_inserted.wait(10)
    memberships_update(user_id=2, add=[AddItem(slug="S2")], remove=[], source="api", actor="fast")
    assert events_sequence() == 1  # only the committed one
    read = list(Event.objects.filter(position__gt=0, user_id__isnull=False).values_list("actor", "id", "position"))
    fast_done.set()
    thread.join(10)
    assert events_sequence() == 1
    after = list(Event.objects.filter(position__gt=read[-1][2]).values_list("actor", "id", "position"))
    assert [row[0] for row in read] == ["fast"] and [row[0] for row in after] == ["slow"]
    assert after[0][1] < read[0][1]  # a lower id, read after all


@pytest.mark.django_db(transaction=True)
def test_events_sequence__many_at_once_with_writers__every_event_one_position(segment):
    User.objects.bulk_create([User(id=n) for n in range(1, 41)])
    errors = []

    def run(index: int) -> None:
        try:
            for user_id in range(index * 10 + 1, index * 10 + 11):
                memberships_update(user_id=user_id, add=[AddItem(slug="S1")], remove=[], source="api", actor="t")
                events_sequence()
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    events_sequence()
    positions = sorted(Event.objects.values_list("position", flat=True))
    assert errors == [] and positions == list(range(1, 42))  # the segment's event and one for each user
