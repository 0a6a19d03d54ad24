"""Real threads on PostgreSQL: concurrent writers lose nothing and double nothing."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, memberships_expire, memberships_update
from segments.tests.history_replay import assert_database_history_replays
from users.models import User

pytestmark = pytest.mark.django_db(transaction=True)

SLUGS = [f"S{i}" for i in range(6)]


def run_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrapped(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_memberships_update__parallel_updates_of_one_user__history_replays(on_postgres):
    User.objects.create(id=1000)
    Segment.objects.bulk_create([Segment(slug=slug) for slug in SLUGS])

    def worker(index: int) -> None:
        rng = random.Random(index)
        for _ in range(25):
            chosen = rng.sample(SLUGS, 4)
            memberships_update(
                user_id=1000,
                add=[AddItem(slug=slug) for slug in chosen[:2]],
                remove=chosen[2:],
                source="api",
                actor=f"worker-{index}",
            )

    assert run_threads(8, worker) == []
    assert assert_database_history_replays() > 0
    assert Membership.objects.filter(user_id=1000).count() == sum(
        1
        for slug in SLUGS
        if HistoryEvent.objects.filter(segment_slug=slug).order_by("-id").first().operation == "added"
    )


def test_memberships_expire__two_sweeps_at_once__each_expiry_written_once(on_postgres):
    User.objects.bulk_create([User(id=i) for i in range(1, 2001)])
    segment = Segment.objects.create(slug="S")
    past = timezone.now() - timedelta(minutes=5)
    Membership.objects.bulk_create([Membership(user_id=i, segment=segment, expires_at=past) for i in range(1, 2001)])
    counts = []

    errors = run_threads(2, lambda index: counts.append(memberships_expire(batch_size=100)))

    assert errors == []
    assert sum(counts) == 2000
    assert HistoryEvent.objects.filter(source="ttl").count() == 2000
    assert HistoryEvent.objects.values("user_id").distinct().count() == 2000
    assert not Membership.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM segments_historyevent WHERE at <> %s", [past])
        assert cursor.fetchone()[0] == 0
