from decimal import Decimal

import pytest
from django.db import connection

from segments.db import bucket_sql
from segments.errors import SegmentNotFound
from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, bucket, memberships_update, rollout_apply, segment_create
from users.services import user_register, users_register, users_seed

pytestmark = pytest.mark.django_db

VECTORS = [
    ("AVITO_VOICE_MESSAGES", 1000, 8720),
    ("AVITO_VOICE_MESSAGES", 1002, 323),
    ("AVITO_DISCOUNT_30", 1000, 2059),
    ("AVITO_DISCOUNT_30", 1999, 5878),
    ("SEG_1", 1, 6776),
    ("x", 9223372036854775807, 7677),
]


@pytest.mark.parametrize(("slug", "user_id", "expected"), VECTORS)
def test_bucket__api_test_vectors__python_and_sql_agree(slug, user_id, expected):
    assert bucket(slug, user_id) == expected
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {bucket_sql('%s', '%s')}", [slug, user_id])
        assert cursor.fetchone()[0] == expected


def members(slug: str) -> set[int]:
    return set(Membership.objects.active().filter(segment__slug=slug).values_list("user_id", flat=True))


@pytest.fixture
def population(db):
    users_seed(count=10_000, start=1, actor="tests")
    return range(1, 10_001)


def test_rollout_apply__10000_users__covered_share_within_1_5_points(population):
    segment_create(slug="AVITO_VOICE_MESSAGES", actor="tests")
    for percent in (10, 33.33, 50):
        result = rollout_apply(slug="AVITO_VOICE_MESSAGES", percent=Decimal(str(percent)), actor="tests")
        share = len(members("AVITO_VOICE_MESSAGES")) / len(population) * 100
        assert abs(share - percent) <= 1.5, (percent, share)
        assert members("AVITO_VOICE_MESSAGES") == {
            u for u in population if bucket("AVITO_VOICE_MESSAGES", u) < percent * 100
        }
        assert result.added > 0


def test_rollout_apply__raising__keeps_every_earlier_member(population):
    segment_create(slug="S", rollout_percent=Decimal(5), actor="tests")
    before = members("S")
    rollout_apply(slug="S", percent=Decimal(20), actor="tests")
    assert before < members("S")


def test_rollout_apply__lowering__removes_rollout_members_keeps_manual(population):
    segment_create(slug="S", rollout_percent=Decimal(50), actor="tests")
    covered = sorted(members("S"))
    manual = covered[0]
    memberships_update(user_id=manual, add=[AddItem(slug="S")], remove=[], source="api", actor="tests")
    outside = next(u for u in population if u not in members("S"))
    memberships_update(user_id=outside, add=[AddItem(slug="S")], remove=[], source="api", actor="tests")

    result = rollout_apply(slug="S", percent=Decimal(0), actor="tests")

    assert members("S") == {manual, outside}
    assert result.removed == len(covered) - 1
    assert HistoryEvent.objects.filter(operation="removed", source="rollout").count() == result.removed


def test_rollout_apply__run_again__changes_nothing(population):
    segment_create(slug="S", rollout_percent=Decimal(10), actor="tests")
    events = HistoryEvent.objects.count()
    result = rollout_apply(slug="S", percent=Decimal(10), actor="tests")
    assert (result.added, result.removed) == (0, 0)
    assert HistoryEvent.objects.count() == events


def test_rollout_apply__dry_run__counts_without_changing(population):
    segment_create(slug="S", rollout_percent=Decimal(10), actor="tests")
    before = members("S")

    preview = rollout_apply(slug="S", percent=Decimal(25), dry_run=True, actor="tests")

    assert members("S") == before
    assert Segment.objects.get(slug="S").rollout_percent == Decimal(10)
    applied = rollout_apply(slug="S", percent=Decimal(25), actor="tests")
    assert (preview.added, preview.removed) == (applied.added, applied.removed)
    back = rollout_apply(slug="S", percent=Decimal(10), dry_run=True, actor="tests")
    assert (back.added, back.removed) == (0, applied.added)


def test_rollout__users_registered_later__join_at_once(db):
    segment_create(slug="AVITO_VOICE_MESSAGES", rollout_percent=Decimal(50), actor="tests")
    assert user_register(user_id=1002, actor="tests")[1]  # bucket 323: covered
    assert not user_register(user_id=1002, actor="tests")[1]
    user_register(user_id=1000, actor="tests")  # bucket 8720: not covered
    users_register(user_ids=[u for u in range(2000, 2100)], actor="tests")

    expected = {1002} | {u for u in range(2000, 2100) if bucket("AVITO_VOICE_MESSAGES", u) < 5000}
    assert members("AVITO_VOICE_MESSAGES") == expected
    assert HistoryEvent.objects.filter(source="rollout", operation="added").count() == len(expected)


def test_rollout__seeded_users__join_at_once(db):
    segment_create(slug="AVITO_DISCOUNT_30", rollout_percent=Decimal(30), actor="tests")
    users_seed(count=1000, start=1000, actor="tests")
    assert members("AVITO_DISCOUNT_30") == {u for u in range(1000, 2000) if bucket("AVITO_DISCOUNT_30", u) < 3000}
    assert 1000 in members("AVITO_DISCOUNT_30")  # bucket 2059


def test_rollout_apply__unknown_segment__not_found(db):
    with pytest.raises(SegmentNotFound):
        rollout_apply(slug="NOPE", percent=Decimal(10), actor="tests")
