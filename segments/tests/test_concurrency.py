"""Real threads on PostgreSQL: concurrent writers lose nothing and double nothing."""

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from segments.models import HistoryEvent, Membership, Segment
from segments.services import (
    AddItem,
    automatic_verify,
    bucket,
    memberships_expire,
    memberships_update,
    relative_rules_apply,
    rollout_apply,
    segment_create,
    segment_update,
)
from users.attribute_writes import user_attributes_write, users_attributes_write
from users.models import User, UserAttributes
from users.services import users_register

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


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def blocked_by_me(pids: list[int]) -> bool:
    """Whether the backend in `pids` (once there) waits for a lock this connection's backend holds."""
    if not pids:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", [pids[0]])
        return cursor.fetchone()[0]


def test_memberships_update__parallel_updates_of_one_user__history_replays(assert_database_history_replays):
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


def test_memberships_expire__two_sweeps_at_once__each_expiry_written_once():
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
        cursor.execute("SELECT count(*) FROM segments_historyevent WHERE source = 'ttl' AND at <> %s", [past])
        assert cursor.fetchone()[0] == 0


def test_rollout_apply__concurrent_rollouts_and_registrations__members_match_final_percent(
    assert_database_history_replays,
):
    User.objects.bulk_create([User(id=i) for i in range(1, 3001)])
    Segment.objects.create(slug="S")
    percents = [Decimal(p) for p in (40, 10, 70, 25)]

    def worker(index: int) -> None:
        if index < len(percents):
            rollout_apply(slug="S", percent=percents[index], actor=f"rollout-{index}")
        else:
            start = 10_000 + index * 1000
            users_register(user_ids=list(range(start, start + 500)), actor="register")

    assert run_threads(len(percents) + 3, worker) == []
    final = Segment.objects.get(slug="S").rollout_percent
    everyone = User.objects.values_list("id", flat=True)
    expected = {u for u in everyone if bucket("S", u) < int(final * 100)}
    assert set(Membership.objects.filter(segment__slug="S").values_list("user_id", flat=True)) == expected
    assert_database_history_replays()


def test_users_register__during_an_uncommitted_rollout__sees_its_new_percent(assert_database_history_replays):
    Segment.objects.create(slug="S")
    rollout_apply(slug="S", percent=Decimal(50), actor="setup")
    rollout_started, registered = threading.Event(), threading.Event()
    registrant: list[int] = []  # the registering connection's backend pid

    def worker(index: int) -> None:
        if index == 0:
            with transaction.atomic():
                rollout_apply(slug="S", percent=Decimal(10), actor="rollout")
                rollout_started.set()
                # Commit only once the registration waits for this transaction's locks (or, were it not to
                # wait, has finished): a fixed sleep let a slow registration start after the commit.
                assert wait_for(lambda: registered.is_set() or blocked_by_me(registrant), 30)
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                registrant.append(cursor.fetchone()[0])
            rollout_started.wait(10)
            users_register(user_ids=list(range(1, 1001)), actor="register")
            registered.set()

    assert run_threads(2, worker) == []
    members = set(Membership.objects.filter(segment__slug="S").values_list("user_id", flat=True))
    assert members == {u for u in range(1, 1001) if bucket("S", u) < 1000}
    assert_database_history_replays()


def test_attribute_writes_rule_changes_registrations_and_removals_at_once__verify_finds_nothing(
    assert_database_history_replays,
):
    """Attribute writes of the same users, rule and percent changes of the segments, registrations and manual
    removals (exclusions) interleave; afterwards every automatic membership equals its definition."""
    users_register(user_ids=list(range(1, 41)), actor="tests")
    cities = ["Moscow", "Kazan", "Perm"]
    rules = [{"attribute": "city", "op": "eq", "value": city} for city in cities] + [
        {"not": {"attribute": "city", "op": "in", "value": ["Moscow", "Kazan"]}},
        None,
    ]
    for index in range(3):
        segment_create(slug=f"R{index}", rule=rules[index], actor="tests")

    def writer(index: int) -> None:
        rng = random.Random(index)
        for _ in range(15):
            choice = rng.random()
            if index == 0:  # rules and percents change
                segment_update(
                    slug=f"R{rng.randrange(3)}",
                    rule=rng.choice(rules),
                    rollout_percent=Decimal(rng.choice([30, 70, 100])),
                    actor="pm",
                )
            elif index == 1:  # new users register, and are removed by hand from a segment
                user_id = 100 + rng.randrange(1000)
                users_register(user_ids=[user_id], actor="registrar")
                memberships_update(
                    user_id=rng.randrange(1, 41), add=[], remove=[f"R{rng.randrange(3)}"], source="api", actor="pm"
                )
            elif choice < 0.5:
                user_attributes_write(
                    user_id=rng.randrange(1, 41),
                    attributes={"city": rng.choice([*cities, None])},
                    merge=True,
                    register=False,
                    actor=f"writer-{index}",
                )
            else:
                users_attributes_write(
                    items=[(user_id, {"city": rng.choice(cities)}) for user_id in rng.sample(range(1, 41), 10)],
                    merge=False,
                    register=True,
                    actor=f"writer-{index}",
                )

    assert run_threads(5, writer) == []
    assert automatic_verify() == []
    assert assert_database_history_replays() > 0


def test_time_sweep__waiting_for_an_uncommitted_rule_change__evaluates_the_new_rule():
    """The sweep locks the segment only once the rule change commits; it must then read the new compiled rule,
    not the changed segment row joined with the rule compiled before."""
    users_register(user_ids=[1, 2, 3, 4], actor="tests")
    now, old = datetime.now(UTC), datetime.now(UTC) - timedelta(days=40)
    UserAttributes.objects.bulk_create(
        [
            UserAttributes(user_id=1, attributes={"seen": now.isoformat(), "city": "Moscow"}),
            UserAttributes(user_id=2, attributes={"seen": now.isoformat()}),
            UserAttributes(user_id=3, attributes={"seen": old.isoformat(), "city": "Moscow"}),
            UserAttributes(user_id=4, attributes={"seen": old.isoformat()}),
        ]
    )
    segment_create(slug="SEEN", rule={"attribute": "seen", "op": "after", "value": "-P30D"}, actor="setup")
    new_rule = {
        "all": [
            {"attribute": "seen", "op": "after", "value": "-P60D"},
            {"attribute": "city", "op": "eq", "value": "Moscow"},
        ]
    }
    changed, swept = threading.Event(), threading.Event()
    sweeper: list[int] = []

    def worker(index: int) -> None:
        if index == 0:
            with transaction.atomic():
                segment_update(slug="SEEN", rule=new_rule, actor="pm")
                changed.set()
                assert wait_for(lambda: swept.is_set() or blocked_by_me(sweeper), 30)
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                sweeper.append(cursor.fetchone()[0])
            changed.wait(10)
            relative_rules_apply()
            swept.set()

    assert run_threads(2, worker) == []
    assert set(Membership.objects.filter(segment__slug="SEEN").values_list("user_id", flat=True)) == {1, 3}
    assert automatic_verify() == []
