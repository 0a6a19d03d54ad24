"""Every invariant the database enforces, proven by a row it rejects."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from segments.models import HistoryEvent, Membership, Segment
from users.models import User

pytestmark = pytest.mark.django_db


def _rejected(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


@pytest.fixture
def user():
    return User.objects.create(id=1000)


@pytest.fixture
def segment():
    return Segment.objects.create(slug="AVITO_DISCOUNT_30")


def test_user__id_zero_or_negative__rejected():
    assert _rejected(lambda: User.objects.create(id=0))
    assert _rejected(lambda: User.objects.create(id=-5))


def test_segment__duplicate_slug__rejected(segment):
    assert _rejected(lambda: Segment.objects.create(slug="AVITO_DISCOUNT_30"))


def test_segment__slugs_differing_in_case__both_allowed(segment):
    assert not _rejected(lambda: Segment.objects.create(slug="avito_discount_30"))


@pytest.mark.parametrize("percent", ["-0.01", "100.01", "250"])
def test_segment__rollout_out_of_range__rejected(percent):
    assert _rejected(lambda: Segment.objects.create(slug="S", rollout_percent=percent))


@pytest.mark.parametrize("slug", ["", "-leading-dash", "has space", "semi;colon", "=cmd()"])
def test_segment__malformed_slug__rejected(slug):
    assert _rejected(lambda: Segment.objects.create(slug=slug))


def test_membership__same_user_and_segment_twice__rejected(user, segment):
    Membership.objects.create(user=user, segment=segment)
    assert _rejected(lambda: Membership.objects.create(user=user, segment=segment))


def test_membership__unknown_source__rejected(user, segment):
    assert _rejected(lambda: Membership.objects.create(user=user, segment=segment, source="magic"))


@pytest.mark.parametrize("expires_at", ["9999-01-01 00:00:00+00", "10000-01-01 04:59:59+00", "infinity"])
def test_membership__expiry_at_or_past_the_bound__rejected(user, segment, expires_at):
    def create():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segments_membership (user_id, segment_id, source, expires_at)"
                " VALUES (%s, %s, 'manual', %s::timestamptz)",
                [user.pk, segment.pk, expires_at],
            )

    assert _rejected(create)


def test_membership__expiry_just_before_the_bound__allowed(user, segment):
    at = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert not _rejected(lambda: Membership.objects.create(user=user, segment=segment, expires_at=at))


def test_membership__unknown_user__rejected(segment):
    def create():
        Membership.objects.create(user_id=424242, segment=segment)
        connection.check_constraints(table_names=["segments_membership"])  # foreign keys are checked at commit

    assert _rejected(create)


def test_history__unknown_operation_or_source__rejected():
    assert _rejected(lambda: HistoryEvent.objects.create(user_id=1, segment_slug="S", operation="moved", source="api"))
    assert _rejected(lambda: HistoryEvent.objects.create(user_id=1, segment_slug="S", operation="added", source="x"))


def test_history__user_and_segment_need_not_exist__accepted():
    assert not _rejected(
        lambda: HistoryEvent.objects.create(user_id=99, segment_slug="GONE", operation="removed", source="api")
    )


def test_indexes__design_indexes__exist():
    def index_columns(table):
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, table)
        return {tuple(c["columns"]) for c in found.values() if c["index"] or c["unique"]}

    assert {("segment_id", "user_id"), ("expires_at",), ("user_id", "segment_id")} <= index_columns(
        "segments_membership"
    )
    assert {("user_id", "at"), ("segment_slug", "at"), ("at",)} <= index_columns("segments_historyevent")


def test_expires_at_index__is_partial():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'membership_expires_at'")
        assert "WHERE (expires_at IS NOT NULL)" in cursor.fetchone()[0]


def test_membership_table__autovacuum__after_one_percent_changes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'segments_membership'")
        assert set(cursor.fetchone()[0]) == {
            "autovacuum_vacuum_scale_factor=0.01",
            "autovacuum_analyze_scale_factor=0.01",
        }
