"""Reads that several places share."""

from django.db import connections
from django.db.models import Count
from django.db.models.functions import Lower

from segments.models import Membership, MembershipActive, Segment

MAX_BATCH_USER_IDS = 1000


def active_sql(alias: str) -> str:
    """SQL for "membership `alias` is active" (README, Decisions: Active), for raw queries."""
    return f"{MembershipActive.function}({alias}.expires_at)"


def _user_slug_rows(condition: str, params: list, using: str) -> list[tuple[int, str | None]]:
    """(user id, active slug or None) of the registered users whose id meets `condition`, one query.

    `condition` names the id column `{id}`; it also selects the membership rows, so that a list of ids
    is looked up in the memberships' index rather than by a scan of all memberships.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT u.id, s.slug FROM users_user u"
            " LEFT JOIN segments_membership m ON m.user_id = u.id"
            f" AND {condition.format(id='m.user_id')} AND {active_sql('m')}"
            " LEFT JOIN segments_segment s ON s.id = m.segment_id"
            f" WHERE {condition.format(id='u.id')}",
            params * 2,
        )
        return cursor.fetchall()


def user_segment_slugs(user_id: int, using: str = "default") -> list[str] | None:
    """The hot path: a user's active segment slugs, sorted, in one query; None if the user is unknown."""
    rows = _user_slug_rows("{id} = %s", [user_id], using)
    if not rows:
        return None
    return sorted(slug for _, slug in rows if slug is not None)


def users_segment_slugs(user_ids: list[int], using: str = "default") -> tuple[list[dict], list[int]]:
    """The batch lookup: each registered user's active slugs (sorted) and the unknown ids, in one query.

    Both lists keep the order of `user_ids`.
    """
    condition, params = "{id} = ANY(%s)", [list(user_ids)]
    found: dict[int, list[str]] = {}
    for user_id, slug in _user_slug_rows(condition, params, using):
        slugs = found.setdefault(user_id, [])
        if slug is not None:
            slugs.append(slug)
    users = [{"user_id": user_id, "segments": sorted(found[user_id])} for user_id in user_ids if user_id in found]
    return users, [user_id for user_id in user_ids if user_id not in found]


def slugs_differing_in_case(slugs: list[str]) -> dict[str, str]:
    """{slug: the existing segment's slug that differs from it only in case} for those of `slugs` that name no
    segment but such a one (the first in order when several do); one query."""
    existing = list(
        Segment.objects.annotate(lowered=Lower("slug"))
        .filter(lowered__in={slug.lower() for slug in slugs})
        .order_by("slug")
        .values_list("slug", flat=True)
    )
    matches = {}
    for slug in slugs:
        same = [other for other in existing if other.lower() == slug.lower()]
        if same and slug not in same:
            matches[slug] = same[0]
    return matches


def segments_with_member_count():
    return Segment.objects.annotate(
        member_count=Count("memberships", filter=MembershipActive("memberships__expires_at"))
    )


def user_memberships(user_id: int):
    return Membership.objects.active().filter(user_id=user_id).select_related("segment").order_by("segment__slug")
