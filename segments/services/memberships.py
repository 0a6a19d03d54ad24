"""Adding users to segments and removing them: one user at a time, all or nothing (many users to one
segment: one user at a time, in one transaction)."""

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, connection, transaction

from core.errors import UserNotFound, ValidationFailed
from segments.errors import SegmentNotFound
from segments.models import EXPIRES_BEFORE
from segments.services.expiry import memberships_expire
from segments.services.journal import journal

MAX_TTL_SECONDS = 100 * 366 * 24 * 3600


@dataclass(frozen=True)
class AddItem:
    """One segment to add: forever, until `expires_at`, or for `ttl_seconds`."""

    slug: str
    expires_at: datetime | None = None
    ttl_seconds: int | None = None


@dataclass
class MembershipsChange:
    user_id: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)


def memberships_update(
    *, user_id: int, add: list[AddItem], remove: list[str], source: str, actor: str
) -> MembershipsChange:
    """Add and remove one user's segments atomically; write one history event per real change.

    Re-adding an active member writes no history and sets its expiry to the one given
    (none if none given); removing a non-member does nothing. On any error nothing changes.
    One call of `segments_memberships_update` (the newest of its migrations' files, segments/migrations/sql/): one round
    trip, its own transaction unless the caller holds one (then inside a savepoint).
    """
    _check_lists(add, remove)
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT * FROM segments_memberships_update(%s, %s::text[], %s::timestamptz[], %s::bigint[],"
                " %s::text[], %s, %s)",
                [
                    user_id,
                    [item.slug for item in add],
                    [item.expires_at for item in add],
                    [item.ttl_seconds for item in add],
                    list(dict.fromkeys(remove)),
                    source,
                    actor,
                ],
            )
            added, updated, removed, segments = cursor.fetchone()
    except DatabaseError as exc:
        code = getattr(exc.__cause__, "sqlstate", None)  # psycopg 3
        if code == "SG404":
            raise UserNotFound(user_id) from None
        if code == "SG405":
            raise SegmentNotFound(_slugs_in(exc)) from None
        if code == "SG400":
            slugs = _slugs_in(exc)
            raise ValidationFailed({"add": [f"expires_at is in the past for: {', '.join(slugs)}"]}) from None
        raise
    return MembershipsChange(user_id, sorted(added), sorted(updated), sorted(removed), sorted(segments))


def memberships_add_users(
    *,
    slug: str,
    user_ids: list[int],
    expires_at: datetime | None = None,
    ttl_seconds: int | None = None,
    source: str,
    actor: str,
) -> list[MembershipsChange]:
    """Add users to one segment, all or nothing (the admin's "Add members"): memberships_update for each
    user, in user id order (the order locks are taken in), in one transaction. Raises UserNotFound for
    the first unknown user, and what memberships_update raises; then nothing changes."""
    item = AddItem(slug=slug, expires_at=expires_at, ttl_seconds=ttl_seconds)
    with transaction.atomic():
        return [
            memberships_update(user_id=user_id, add=[item], remove=[], source=source, actor=actor)
            for user_id in sorted(set(user_ids))
        ]


def expiry_problem(expires_at: datetime, *, not_before: datetime | None = None) -> str | None:
    """Why `expires_at` cannot be a membership's expiry, or None: the one check of every way in (API,
    seed API, admin, imports, commands). Without a time zone, not after `not_before` (when given), or
    not before EXPIRES_BEFORE. ttl_seconds are bounded by MAX_TTL_SECONDS, far within it."""
    if expires_at.tzinfo is None:
        return "has no time zone"
    if not_before is not None and expires_at <= not_before:
        return "is in the past"
    if expires_at >= EXPIRES_BEFORE:
        return f"must be before {EXPIRES_BEFORE:%Y-%m-%dT%H:%M:%SZ}"
    return None


def _slugs_in(exc: DatabaseError) -> list[str]:
    """The slugs that an SG405 or SG400 error names: its message is a JSON array."""
    return json.loads(exc.__cause__.diag.message_primary)


def memberships_remove_all(
    *, user_id: int | None = None, segment_id: int | None = None, source: str, actor: str
) -> int:
    """Remove every membership of a user or of a segment that is being deleted (the journal writes each).

    Due memberships leave first as `ttl` removals at their expiry; the rest with `source`.
    Returns how many left with `source`. Runs in the caller's transaction.
    """
    column, value = ("user_id", user_id) if user_id is not None else ("segment_id", segment_id)
    memberships_expire(**{column: value})
    with journal(source=source, actor=actor), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM segments_membership WHERE {column} = %s", [value])
        return cursor.rowcount


def _check_lists(add: list[AddItem], remove: list[str]) -> None:
    errors = {}
    add_slugs = [item.slug for item in add]
    both = sorted(set(add_slugs) & set(remove))
    if both:
        errors["non_field_errors"] = [f"Segments both added and removed: {', '.join(both)}"]
    seen, twice = set(), set()
    for slug in add_slugs:
        (twice if slug in seen else seen).add(slug)
    if twice:
        errors["add"] = [f"Segments listed more than once: {', '.join(sorted(twice))}"]
    for item in add:
        if item.expires_at is not None and (problem := expiry_problem(item.expires_at)):
            errors.setdefault("add", []).append(f"{item.slug}: expires_at {problem}")
        if item.expires_at is not None and item.ttl_seconds is not None:
            errors.setdefault("add", []).append(f"{item.slug}: give expires_at or ttl_seconds, not both")
        if item.ttl_seconds is not None and not 1 <= item.ttl_seconds <= MAX_TTL_SECONDS:
            errors.setdefault("add", []).append(f"{item.slug}: ttl_seconds must be from 1 to {MAX_TTL_SECONDS}")
    if errors:
        raise ValidationFailed(errors)
