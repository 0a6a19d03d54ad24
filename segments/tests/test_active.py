"""'Active' is defined once, by the SQL function segments_membership_active, and every read asks it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from segments.admin.lists import active_member_count, with_capped_member_counts
from segments.models import Membership, Segment
from segments.selectors import segments_with_member_count, user_memberships, user_segment_slugs, users_segment_slugs

# Only memberships without an expiry count: a definition unlike the real one, so that a reader that
# does not ask the function shows the difference.
FOREVER_ONLY = """
CREATE OR REPLACE FUNCTION segments_membership_active(expires_at timestamptz, at timestamptz DEFAULT now())
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT expires_at IS NULL $$
"""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("expires_at", "active"),
    [(None, True), ("2030-01-01 00:00:01+00", True), ("2030-01-01 00:00:00+00", False), ("2029-12-31 23:59+00", False)],
)
def test_membership_active__expiry_against_the_instant__active_until_that_instant(expires_at, active):
    with connection.cursor() as cursor:
        cursor.execute("SELECT segments_membership_active(%s::timestamptz, '2030-01-01 00:00:00+00')", [expires_at])
        assert cursor.fetchone() == (active,)


@pytest.mark.django_db
def test_readers__function_redefined__every_one_follows_it(users, segments):
    """Users 1000 (forever), 1002 (until tomorrow) and 1004 (due yesterday, not swept) in one segment."""
    segment = Segment.objects.get(slug=segments[0])
    now = timezone.now()
    for user_id, expires_at in ((1000, None), (1002, now + timedelta(days=1)), (1004, now - timedelta(days=1))):
        Membership.objects.create(user_id=user_id, segment=segment, expires_at=expires_at)

    def seen() -> dict:
        listed = with_capped_member_counts(Segment.objects.filter(pk=segment.pk)).get()
        return {
            "active()": sorted(Membership.objects.active().values_list("user_id", flat=True)),
            "member_count": segments_with_member_count().get(pk=segment.pk).member_count,
            "user_memberships": [user_memberships(user_id).count() for user_id in users],
            "user_segment_slugs": [len(user_segment_slugs(user_id)) for user_id in users],
            "users_segment_slugs": [len(user["segments"]) for user in users_segment_slugs(users)[0]],
            "admin count": active_member_count([segment.pk]),
            "admin due": listed.member_due,
        }

    assert seen() == {
        "active()": [1000, 1002],
        "member_count": 2,
        "user_memberships": [1, 1, 0],
        "user_segment_slugs": [1, 1, 0],
        "users_segment_slugs": [1, 1, 0],
        "admin count": 2,
        "admin due": 1,
    }
    with connection.cursor() as cursor:
        cursor.execute(FOREVER_ONLY)
    assert seen() == {
        "active()": [1000],
        "member_count": 1,
        "user_memberships": [1, 0, 0],
        "user_segment_slugs": [1, 0, 0],
        "users_segment_slugs": [1, 0, 0],
        "admin count": 1,
        "admin due": 2,
    }
