"""Sticky percentage rollout: deterministic buckets, materialised as `rollout` memberships."""

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction

from core.db import CLOCK
from segments.errors import SegmentNotFound
from segments.services.automatic import (
    automatic_apply,
    automatic_count,
    definition_with,
    segment_definitions,
    threshold,
)
from segments.services.journal import journal


def bucket(slug: str, user_id: int) -> int:
    """The user's bucket in 0..9999 for a segment (API.md, "Automatic assignment")."""
    return int(hashlib.md5(f"{slug}:{user_id}".encode()).hexdigest()[:8], 16) % 10000


def is_covered(slug: str, user_id: int, percent: Decimal | int | float) -> bool:
    return bucket(slug, user_id) < threshold(percent)


@dataclass(frozen=True)
class RolloutResult:
    slug: str
    percent: Decimal
    added: int
    removed: int


def rollout_apply(*, slug: str, percent: Decimal, actor: str, dry_run: bool = False) -> RolloutResult:
    """Set a segment's rollout percent and bring its automatic memberships in line with it.

    Raising adds every covered user (matching the segment's rule, if any) who is neither a member nor
    excluded; lowering removes the automatic members no longer covered; manual members stay (one
    evaluation: services/automatic.py). Concurrent rollouts of one segment serialise on the segment row.
    Runs inside the caller's transaction if any.
    """
    percent = Decimal(str(percent))
    with transaction.atomic(), journal(actor=actor), connection.cursor() as cursor:
        cursor.execute("SELECT id, rollout_percent FROM segments_segment WHERE slug = %s FOR NO KEY UPDATE", [slug])
        row = cursor.fetchone()
        if row is None:
            raise SegmentNotFound([slug])
        segment_id, old_percent = row
        if dry_run:
            [definition] = segment_definitions(segment_ids=[segment_id])
            return RolloutResult(slug, percent, *automatic_count([definition_with(definition, percent=percent)]))
        if old_percent != percent:
            cursor.execute(
                f"UPDATE segments_segment SET rollout_percent = %s, updated_at = {CLOCK} WHERE id = %s",
                [percent, segment_id],
            )
        result = automatic_apply(actor=actor, segment_ids=[segment_id])
    return RolloutResult(slug, percent, result.added, result.removed)


def rollout_join_users(*, user_ids: list[int], actor: str) -> int:
    """Give newly registered users every automatic membership their segments' definitions give them (rules
    and rollouts), in the caller's transaction; returns how many (services/automatic.py, whose locks
    order this against a rule or rollout changing at the same time)."""
    return automatic_apply(actor=actor, user_ids=user_ids).added
