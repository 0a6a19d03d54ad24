import time
from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from core.errors import UserNotFound, ValidationFailed
from segments.errors import SegmentNotFound
from segments.models import HistoryEvent, Membership, Segment
from segments.selectors import user_segment_slugs
from segments.services import AddItem, memberships_add_users, memberships_expire, memberships_update, segment_delete
from users.services import user_delete

pytestmark = pytest.mark.django_db


def events_in_write_order() -> list[tuple]:
    return list(HistoryEvent.objects.order_by("id").values_list("user_id", "segment_slug", "operation", "source"))


def update(user_id=1000, add=(), remove=(), source="api", actor="tests"):
    add = [AddItem(slug=item) if isinstance(item, str) else item for item in add]
    return memberships_update(user_id=user_id, add=add, remove=list(remove), source=source, actor=actor)


def test_memberships_update__assignment_example__each_user_gets_their_segments(users, segments):
    update(1000, add=["AVITO_VOICE_MESSAGES", "AVITO_PERFORMANCE_VAS", "AVITO_DISCOUNT_30"])
    update(1002, add=["AVITO_VOICE_MESSAGES", "AVITO_DISCOUNT_50"])

    assert user_segment_slugs(1000) == ["AVITO_DISCOUNT_30", "AVITO_PERFORMANCE_VAS", "AVITO_VOICE_MESSAGES"]
    assert user_segment_slugs(1002) == ["AVITO_DISCOUNT_50", "AVITO_VOICE_MESSAGES"]
    assert user_segment_slugs(1004) == []
    assert user_segment_slugs(99) is None


def test_memberships_update__add_and_remove__one_event_per_change(events, users, segments):
    update(add=["AVITO_DISCOUNT_30", "AVITO_DISCOUNT_50"])
    change = update(add=["AVITO_VOICE_MESSAGES"], remove=["AVITO_DISCOUNT_50", "AVITO_PERFORMANCE_VAS"])

    assert change.added == ["AVITO_VOICE_MESSAGES"]
    assert change.removed == ["AVITO_DISCOUNT_50"]  # removing a non-member is a no-op
    assert change.segments == ["AVITO_DISCOUNT_30", "AVITO_VOICE_MESSAGES"]
    assert events() == [
        (1000, "AVITO_DISCOUNT_30", "added", "api"),
        (1000, "AVITO_DISCOUNT_50", "added", "api"),
        (1000, "AVITO_DISCOUNT_50", "removed", "api"),
        (1000, "AVITO_VOICE_MESSAGES", "added", "api"),
    ]
    assert set(HistoryEvent.objects.values_list("actor", flat=True)) == {"tests"}


def test_memberships_update__unknown_slug_in_add__remove_is_undone_too(events, users, segments):
    update(add=["AVITO_DISCOUNT_30"])
    before = events()

    with pytest.raises(SegmentNotFound) as error:
        update(add=["AVITO_NOPE", "AVITO_ALSO_NOPE"], remove=["AVITO_DISCOUNT_30"])

    assert error.value.extra["slugs"] == ["AVITO_ALSO_NOPE", "AVITO_NOPE"]
    assert user_segment_slugs(1000) == ["AVITO_DISCOUNT_30"]
    assert events() == before


def test_memberships_update__unknown_user__raises_and_creates_nothing(segments):
    with pytest.raises(UserNotFound):
        update(user_id=5, add=["AVITO_DISCOUNT_30"])
    assert not Membership.objects.exists() and not HistoryEvent.objects.exists()


def test_memberships_add_users__many_with_a_ttl__each_added_once_with_its_expiry(events, users, segments):
    changes = memberships_add_users(
        slug="AVITO_DISCOUNT_30", user_ids=[1004, 1000, 1004], ttl_seconds=3600, source="admin", actor="pm"
    )

    assert [(change.user_id, change.added) for change in changes] == [
        (1000, ["AVITO_DISCOUNT_30"]),
        (1004, ["AVITO_DISCOUNT_30"]),
    ]
    expiries = Membership.objects.filter(segment__slug="AVITO_DISCOUNT_30").values_list("expires_at", flat=True)
    assert len(expiries) == 2 and all(
        timedelta(minutes=59) < expiry - timezone.now() <= timedelta(hours=1) for expiry in expiries
    )
    assert events(source="admin") == [
        (1000, "AVITO_DISCOUNT_30", "added", "admin"),
        (1004, "AVITO_DISCOUNT_30", "added", "admin"),
    ]


def test_memberships_add_users__one_unknown_user__raises_and_adds_nobody(users, segments):
    with pytest.raises(UserNotFound):
        memberships_add_users(slug="AVITO_DISCOUNT_30", user_ids=[1000, 1001, 1002], source="admin", actor="pm")
    assert not Membership.objects.exists() and not HistoryEvent.objects.exists()


def test_memberships_update__slug_in_both_lists__validation_error(users, segments):
    with pytest.raises(ValidationFailed):
        update(add=["AVITO_DISCOUNT_30"], remove=["AVITO_DISCOUNT_30"])


def test_memberships_update__expires_at_in_past__validation_error_changes_nothing(users, segments):
    past = timezone.now() - timedelta(minutes=1)
    with pytest.raises(ValidationFailed):
        update(add=["AVITO_DISCOUNT_50", AddItem(slug="AVITO_DISCOUNT_30", expires_at=past)])
    assert not Membership.objects.exists()


def test_memberships_update__readd_active_member__no_history_and_expiry_replaced(events, users, segments):
    later = timezone.now() + timedelta(days=2)
    update(add=[AddItem(slug="AVITO_DISCOUNT_30", expires_at=later)])

    again = update(add=["AVITO_DISCOUNT_30"])

    assert again.added == [] and again.updated == ["AVITO_DISCOUNT_30"]
    assert Membership.objects.get().expires_at is None
    assert len(events()) == 1
    assert update(add=["AVITO_DISCOUNT_30"]).updated == []  # same expiry again: nothing to report


@pytest.mark.django_db(transaction=True)  # the database clock must move on between statements
def test_memberships_update__ttl_seconds__expires_that_many_seconds_after_the_change(users, segments):
    """Counted from the change's own clock (`added_at`), not from a later read: a loaded machine may pause for
    a second between two statements. The TTL of 3 s leaves the read before it that much room."""
    update(add=[AddItem(slug="AVITO_DISCOUNT_30", ttl_seconds=3)])
    membership = Membership.objects.annotate(db_now=Now()).get()
    assert membership.expires_at - membership.added_at == timedelta(seconds=3)
    assert membership.added_at <= membership.db_now
    assert user_segment_slugs(1000) == ["AVITO_DISCOUNT_30"]

    time.sleep(max(0.0, (membership.expires_at - membership.db_now).total_seconds()) + 0.1)

    assert user_segment_slugs(1000) == []
    assert update().segments == []


def test_memberships_update__readd_expired__is_an_add_after_a_ttl_removal(users, segments):
    update(add=[AddItem(slug="AVITO_DISCOUNT_30", ttl_seconds=60)])
    expired_at = timezone.now() - timedelta(seconds=5)
    Membership.objects.update(expires_at=expired_at)

    change = update(add=["AVITO_DISCOUNT_30"])

    assert change.added == ["AVITO_DISCOUNT_30"]
    assert events_in_write_order() == [
        (1000, "AVITO_DISCOUNT_30", "added", "api"),
        (1000, "AVITO_DISCOUNT_30", "removed", "ttl"),
        (1000, "AVITO_DISCOUNT_30", "added", "api"),
    ]
    assert HistoryEvent.objects.get(source="ttl").at == expired_at


def test_memberships_expire__due_memberships__removed_once_at_their_expiry(users, segments):
    update(add=["AVITO_DISCOUNT_50", AddItem(slug="AVITO_DISCOUNT_30", ttl_seconds=60)])
    due = timezone.now() - timedelta(hours=1)
    Membership.objects.filter(segment__slug="AVITO_DISCOUNT_30").update(expires_at=due)

    assert memberships_expire() == 1
    assert memberships_expire() == 0
    removal = HistoryEvent.objects.get(operation="removed")
    assert (removal.segment_slug, removal.source, removal.at) == ("AVITO_DISCOUNT_30", "ttl", due)
    assert user_segment_slugs(1000) == ["AVITO_DISCOUNT_50"]


def test_segment_delete__members__each_removal_in_history(events, users, segments):
    for user_id in users:
        update(user_id, add=["AVITO_DISCOUNT_30"])

    assert segment_delete(slug="AVITO_DISCOUNT_30", actor="tests") == 3

    assert not Segment.objects.filter(slug="AVITO_DISCOUNT_30").exists()
    assert sorted(events(operation="removed")) == [
        (u, "AVITO_DISCOUNT_30", "removed", "segment_deleted") for u in users
    ]


def test_segment_delete__same_slug_created_again__history_continues(events, users, segments):
    update(add=["AVITO_DISCOUNT_30"])
    segment_delete(slug="AVITO_DISCOUNT_30", actor="tests")
    Segment.objects.create(slug="AVITO_DISCOUNT_30")

    assert user_segment_slugs(1000) == []
    update(add=["AVITO_DISCOUNT_30"])
    assert [e[2] for e in events(segment_slug="AVITO_DISCOUNT_30")] == ["added", "removed", "added"]


def test_user_delete__memberships__removed_with_history(events, users, segments):
    update(add=["AVITO_DISCOUNT_30", "AVITO_DISCOUNT_50"])

    assert user_delete(user_id=1000, actor="tests") == 2

    assert user_segment_slugs(1000) is None
    assert events(operation="removed") == [
        (1000, "AVITO_DISCOUNT_30", "removed", "user_deleted"),
        (1000, "AVITO_DISCOUNT_50", "removed", "user_deleted"),
    ]
