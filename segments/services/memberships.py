"""Adding users to segments and removing them: one user at a time, all or nothing."""

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, connection, transaction

from segmenter.db import in_list, is_postgres, lock_clause, now_sql
from segmenter.errors import SegmentNotFound, UserNotFound, ValidationFailed
from segments.models import Membership
from segments.selectors import user_segment_slugs
from segments.services.expiry import memberships_expire
from segments.services.history import changes_record, now_column

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
    """
    _check_lists(add, remove)
    if is_postgres():
        return _update_in_postgres(user_id, add, list(dict.fromkeys(remove)), source, actor)
    with transaction.atomic():
        db_now = _lock_user(user_id)
        if db_now is None:
            raise UserNotFound(user_id)
        segment_ids = _segments_lock(list(dict.fromkeys([item.slug for item in add] + list(remove))))
        expiries = _expiries(add, db_now)
        slug_of = {segment_id: slug for slug, segment_id in segment_ids.items()}

        memberships_expire(user_id=user_id)
        change = MembershipsChange(user_id=user_id)
        if remove:
            condition, params = in_list("segment_id", [segment_ids[slug] for slug in remove])
            removed = changes_record(
                f"DELETE FROM segments_membership WHERE user_id = %s AND {condition}"
                f" RETURNING user_id, segment_id, {now_column()}",
                [user_id, *params],
                operation="removed",
                source=source,
                actor=actor,
                returning=True,
            )
            change.removed = sorted(slug_of[segment_id] for _, segment_id in removed)
        if add:
            change.added, change.updated = _add(user_id, add, segment_ids, expiries, source, actor)
        change.segments = user_segment_slugs(user_id) or []
    return change


def _update_in_postgres(user_id, add, remove, source, actor) -> MembershipsChange:
    """The same steps in one call of `segments_memberships_update` (migration segments/0004): one
    round trip, its own transaction unless the caller holds one (then inside a savepoint)."""
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
                    remove,
                    source,
                    actor,
                ],
            )
            added, updated, removed, segments = cursor.fetchone()
    except DatabaseError as exc:
        code = getattr(exc.__cause__, "pgcode", None)
        if code == "SG404":
            raise UserNotFound(user_id) from None
        if code == "SG405":
            raise SegmentNotFound(_slugs_in(exc)) from None
        if code == "SG400":
            raise _expired_on_arrival(_slugs_in(exc)) from None
        raise
    return MembershipsChange(user_id, sorted(added), sorted(updated), sorted(removed), sorted(segments))


def _slugs_in(exc: DatabaseError) -> list[str]:
    """The slugs that an SG405 or SG400 error names: its message is a JSON array."""
    return json.loads(exc.__cause__.diag.message_primary)


def memberships_remove_all(
    *, user_id: int | None = None, segment_id: int | None = None, source: str, actor: str
) -> int:
    """Remove every membership of a user or of a segment that is being deleted, one event each.

    Due memberships leave first as `ttl` removals at their expiry; the rest with `source`.
    Returns how many left with `source`. Runs in the caller's transaction.
    """
    column, value = ("user_id", user_id) if user_id is not None else ("segment_id", segment_id)
    memberships_expire(**{column: value})
    return changes_record(
        f"DELETE FROM segments_membership WHERE {column} = %s RETURNING user_id, segment_id, {now_column()}",
        [value],
        operation="removed",
        source=source,
        actor=actor,
    )


def _lock_user(user_id: int) -> datetime | None:
    """Lock the user's row (updates of one user queue here) and read the database clock; None if unknown."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {now_sql()} FROM users_user WHERE id = %s{lock_clause('NO KEY UPDATE')}", [user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    if isinstance(row[0], str):  # SQLite gives its clock as UTC text
        return datetime.fromisoformat(row[0]).replace(tzinfo=UTC)
    return row[0]


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
        if item.expires_at is not None and item.ttl_seconds is not None:
            errors.setdefault("add", []).append(f"{item.slug}: give expires_at or ttl_seconds, not both")
        if item.ttl_seconds is not None and not 1 <= item.ttl_seconds <= MAX_TTL_SECONDS:
            errors.setdefault("add", []).append(f"{item.slug}: ttl_seconds must be from 1 to {MAX_TTL_SECONDS}")
    if errors:
        raise ValidationFailed(errors)


def _segments_lock(slugs: list[str]) -> dict[str, int]:
    """Resolve slugs to ids, holding FOR KEY SHARE so that a concurrent delete waits for us."""
    if not slugs:
        return {}
    condition, params = in_list("slug", slugs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT slug, id FROM segments_segment WHERE {condition} ORDER BY id{lock_clause('KEY SHARE')}", params
        )
        found = dict(cursor.fetchall())
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        raise SegmentNotFound(missing)
    return found


def _expiries(add: list[AddItem], db_now: datetime) -> dict[str, datetime | None]:
    expiries, past = {}, []
    for item in add:
        expires_at = item.expires_at
        if item.ttl_seconds is not None:
            expires_at = db_now + timedelta(seconds=item.ttl_seconds)
        if expires_at is not None and expires_at <= db_now:
            past.append(item.slug)
        expiries[item.slug] = expires_at
    if past:
        raise _expired_on_arrival(past)
    return expiries


def _expired_on_arrival(slugs: list[str]) -> ValidationFailed:
    return ValidationFailed({"add": [f"expires_at is in the past for: {', '.join(slugs)}"]})


def _add(user_id, add, segment_ids, expiries, source, actor) -> tuple[list[str], list[str]]:
    values = ", ".join([f"(%s, %s, 'manual', {now_sql()}, %s)"] * len(add))
    params = []
    for item in add:
        params += [user_id, segment_ids[item.slug], expiries[item.slug]]
    # A row that exists is locked, not changed nor returned (DO UPDATE ... WHERE 1 = 0): a rollout
    # lowering at the same time cannot delete it before it is made manual below, losing this add.
    inserted = changes_record(
        "INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
        f" VALUES {values} ON CONFLICT (user_id, segment_id)"
        " DO UPDATE SET expires_at = segments_membership.expires_at WHERE 1 = 0"
        f" RETURNING user_id, segment_id, {now_column()}",
        params,
        operation="added",
        source=source,
        actor=actor,
        returning=True,
    )
    inserted_ids = {segment_id for _, segment_id in inserted}
    added = sorted(item.slug for item in add if segment_ids[item.slug] in inserted_ids)
    updated = []
    existing = [segment_ids[item.slug] for item in add if segment_ids[item.slug] not in inserted_ids]
    if not existing:
        return added, []
    by_segment = {m.segment_id: m for m in Membership.objects.filter(user_id=user_id, segment_id__in=existing)}
    for item in add:
        membership = by_segment.get(segment_ids[item.slug])
        if membership is None:
            continue
        wanted = expiries[item.slug]
        if membership.expires_at != wanted or membership.source != Membership.Source.MANUAL:
            # A manual add makes a rollout member manual: a later, lower rollout keeps it.
            Membership.objects.filter(pk=membership.pk).update(expires_at=wanted, source=Membership.Source.MANUAL)
        if membership.expires_at != wanted:
            updated.append(item.slug)
    return added, sorted(updated)
