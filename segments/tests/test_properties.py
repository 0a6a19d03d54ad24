"""Hypothesis: any sequence of service operations keeps memberships equal to the replay of history."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.errors import ServiceError
from segments.models import HistoryEvent, Membership
from segments.services import (
    AddItem,
    is_covered,
    memberships_expire,
    memberships_update,
    rollout_apply,
    segment_create,
    segment_delete,
)
from users.services import user_delete, users_register

SLUGS = ["A", "B", "C"]
USER_IDS = [1, 2, 3, 1000, 9223372036854775807]
PERCENTS = [Decimal(p) for p in ("0", "10", "33.33", "50", "99.99", "100")]

users = st.sampled_from(USER_IDS)
slugs = st.sampled_from(SLUGS)
add_items = st.builds(AddItem, slug=slugs, ttl_seconds=st.one_of(st.none(), st.integers(1, 3600)))
operations = st.one_of(
    st.tuples(st.just("register"), st.lists(users, min_size=1, max_size=3)),
    st.tuples(st.just("create"), slugs, st.sampled_from(PERCENTS)),
    st.tuples(st.just("update"), users, st.lists(add_items, max_size=3), st.lists(slugs, max_size=2)),
    st.tuples(st.just("rollout"), slugs, st.sampled_from(PERCENTS)),
    st.tuples(st.just("delete_segment"), slugs),
    st.tuples(st.just("delete_user"), users),
    st.tuples(st.just("time_passes"), users),
    st.tuples(st.just("sweep")),
)


def _apply(operation: tuple) -> None:
    name, *args = operation
    if name == "register":
        users_register(user_ids=args[0], actor="prop")
    elif name == "create":
        segment_create(slug=args[0], rollout_percent=args[1], actor="prop")
    elif name == "update":
        memberships_update(user_id=args[0], add=args[1], remove=args[2], source="api", actor="prop")
    elif name == "rollout":
        rollout_apply(slug=args[0], percent=args[1], actor="prop")
    elif name == "delete_segment":
        segment_delete(slug=args[0], actor="prop")
    elif name == "delete_user":
        user_delete(user_id=args[0], actor="prop")
    elif name == "time_passes":
        # The user's timed memberships fall due, as if their TTL had run out; nothing has swept them yet.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE segments_membership SET expires_at = clock_timestamp()"
                " WHERE user_id = %s AND expires_at IS NOT NULL",
                [args[0]],
            )
    else:
        memberships_expire()


def _state() -> tuple:
    return (
        sorted(Membership.objects.values_list("user_id", "segment__slug", "source", "expires_at")),
        HistoryEvent.objects.count(),
    )


def _assert_rollout_members_covered() -> None:
    for user_id, slug, percent in Membership.objects.filter(source="rollout").values_list(
        "user_id", "segment__slug", "segment__rollout_percent"
    ):
        assert is_covered(slug, user_id, percent), (user_id, slug, percent)


@pytest.mark.django_db
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
@given(st.lists(operations, min_size=1, max_size=40))
def test_services__any_sequence_of_operations__memberships_replay_history(
    assert_database_history_replays, operation_list
):
    with transaction.atomic():
        users_register(user_ids=USER_IDS[:4], actor="prop")
        for slug, percent in zip(SLUGS, ("0", "0", "50"), strict=True):
            segment_create(slug=slug, rollout_percent=Decimal(percent), actor="prop")
        for operation in operation_list:
            before = _state()
            try:
                _apply(operation)
            except ServiceError:
                assert _state() == before, f"{operation} was refused but changed data"
        _assert_rollout_members_covered()
        checked = assert_database_history_replays()
        event("history events: " + ("none" if not checked else "1-9" if checked < 10 else "10+"))
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_history_replay__member_without_event_or_doubled_event__reported(history_problems, without_journal):
    users_register(user_ids=[1], actor="prop")
    segment_create(slug="A", actor="prop")
    segment_create(slug="B", actor="prop")
    with without_journal():
        Membership.objects.create(user_id=1, segment_id=segment_create(slug="C", actor="prop").pk)
    memberships_update(user_id=1, add=[AddItem(slug="A")], remove=[], source="api", actor="prop")
    HistoryEvent.objects.create(user_id=1, segment_slug="A", operation="added", source="api")
    HistoryEvent.objects.create(user_id=1, segment_slug="B", operation="added", source="api")

    with connection.cursor() as cursor:
        assert history_problems(cursor) == [
            "doubled added for user 1 in A",
            "member without an added event: user 1 in C",
            "added event without a membership: user 1 in B",
        ]
