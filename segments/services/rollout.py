"""Sticky percentage rollout: deterministic buckets, materialised as `rollout` memberships."""

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from core.db import CLOCK
from segments.db import bucket_sql, rollout_lock
from segments.errors import SegmentNotFound
from segments.selectors import active_sql
from segments.services.expiry import memberships_expire
from segments.services.journal import journal


def bucket(slug: str, user_id: int) -> int:
    """The user's bucket in 0..9999 for a segment (API.md, "Automatic assignment")."""
    return int(hashlib.md5(f"{slug}:{user_id}".encode()).hexdigest()[:8], 16) % 10000


def threshold(percent: Decimal | int | float) -> int:
    """Users with a bucket below this number are covered by a rollout of `percent`."""
    return int(round(Decimal(str(percent)) * 100))


def is_covered(slug: str, user_id: int, percent: Decimal | int | float) -> bool:
    return bucket(slug, user_id) < threshold(percent)


@dataclass(frozen=True)
class RolloutResult:
    slug: str
    percent: Decimal
    added: int
    removed: int


def rollout_apply(*, slug: str, percent: Decimal, actor: str, dry_run: bool = False) -> RolloutResult:
    """Set a segment's rollout percent and bring its `rollout` memberships in line with it.

    Raising adds every covered user who is not an active member; lowering removes the members
    that the rollout added and no longer covers; manual members stay. Concurrent rollouts of
    one segment serialise on the segment row. Runs inside the caller's transaction if any.
    """
    percent = Decimal(str(percent))
    with transaction.atomic(), journal(source="rollout", actor=actor):
        return _apply(slug=slug, percent=percent, dry_run=dry_run)


def _apply(*, slug: str, percent: Decimal, dry_run: bool) -> RolloutResult:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, rollout_percent FROM segments_segment WHERE slug = %s FOR NO KEY UPDATE",
            [slug],
        )
        row = cursor.fetchone()
        if row is None:
            raise SegmentNotFound([slug])
        segment_id, old_percent = row
        limit = threshold(percent)
        if dry_run:
            return RolloutResult(slug, percent, *_count_changes(cursor, segment_id, slug, limit))
        rollout_lock(shared=False)
        if old_percent != percent:
            cursor.execute(
                f"UPDATE segments_segment SET rollout_percent = %s, updated_at = {CLOCK} WHERE id = %s",
                [percent, segment_id],
            )
        memberships_expire(segment_id=segment_id)
        cursor.execute(
            "DELETE FROM segments_membership WHERE segment_id = %s AND source = 'rollout'"
            f" AND {bucket_sql('%s', 'user_id')} >= %s",
            [segment_id, slug, limit],
        )
        removed = cursor.rowcount
        added = 0
        if limit > 0:
            cursor.execute(
                "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
                f" SELECT u.id, %s, 'rollout', {CLOCK}, NULL FROM users_user u"
                # KEY SHARE, as the foreign key check would take at commit: a user being deleted is waited
                # for and skipped, rather than failing this whole transaction at its end.
                f" WHERE {bucket_sql('%s', 'u.id')} < %s FOR KEY SHARE"
                " ON CONFLICT (user_id, segment_id) DO NOTHING",
                [segment_id, slug, limit],
            )
            added = cursor.rowcount
    return RolloutResult(slug, percent, added, removed)


def _count_changes(cursor, segment_id: int, slug: str, limit: int) -> tuple[int, int]:
    active = active_sql("m")
    cursor.execute(
        "SELECT count(*) FROM users_user u"
        f" WHERE {bucket_sql('%s', 'u.id')} < %s AND NOT EXISTS ("
        f" SELECT 1 FROM segments_membership m WHERE m.segment_id = %s AND m.user_id = u.id AND {active})",
        [slug, limit, segment_id],
    )
    added = cursor.fetchone()[0]
    cursor.execute(
        "SELECT count(*) FROM segments_membership m WHERE m.segment_id = %s AND m.source = 'rollout'"
        f" AND {active} AND {bucket_sql('%s', 'm.user_id')} >= %s",
        [segment_id, slug, limit],
    )
    return added, cursor.fetchone()[0]


def rollout_join_users(*, user_ids: list[int], actor: str) -> int:
    """Give newly registered users every rollout that covers them, in the caller's transaction.

    Holds the rollout lock shared, so that a rollout changing at the same time (even one from 0
    percent, or of a segment being created) either sees these users or is seen by them; and the
    rolled-out segments FOR KEY SHARE, so that a segment being deleted is waited for.
    """
    rollout_lock(shared=True)
    with journal(source="rollout", actor=actor), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM segments_segment WHERE rollout_percent > 0 ORDER BY id FOR KEY SHARE")
        if not cursor.fetchall():
            return 0
        cursor.execute(
            "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
            f" SELECT u.id, s.id, 'rollout', {CLOCK}, NULL FROM users_user u CROSS JOIN segments_segment s"
            " WHERE u.id = ANY(%s) AND s.rollout_percent > 0"
            f" AND {bucket_sql('s.slug', 'u.id')} < CAST(ROUND(s.rollout_percent * 100) AS INTEGER)"
            " ON CONFLICT (user_id, segment_id) DO NOTHING",
            [list(user_ids)],
        )
        return cursor.rowcount
