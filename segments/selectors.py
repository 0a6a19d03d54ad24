"""Reads that several places share."""

from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import Now

from segments.models import Membership, Segment

ACTIVE = Q(memberships__expires_at__isnull=True) | Q(memberships__expires_at__gt=Now())


def user_segment_slugs(user_id: int) -> list[str] | None:
    """The hot path: a user's active segment slugs, sorted, in one query; None if the user is unknown."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.id, s.slug FROM users_user u"
            " LEFT JOIN segments_membership m ON m.user_id = u.id"
            " AND (m.expires_at IS NULL OR m.expires_at > now())"
            " LEFT JOIN segments_segment s ON s.id = m.segment_id"
            " WHERE u.id = %s",
            [user_id],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    return sorted(slug for _, slug in rows if slug is not None)


def segments_with_member_count():
    return Segment.objects.annotate(member_count=Count("memberships", filter=ACTIVE))


def user_memberships(user_id: int):
    return Membership.objects.active().filter(user_id=user_id).select_related("segment").order_by("segment__slug")
