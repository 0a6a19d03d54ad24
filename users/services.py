"""Registering and deleting users. New users join the rollouts that cover them at once."""

from collections.abc import Callable

from django.db import connection, transaction

from core.db import CLOCK
from core.errors import UserNotFound
from segments.services import memberships_remove_all, rollout_join_users
from users.models import User


def user_register(*, user_id: int, actor: str) -> tuple[User, bool]:
    """Register one user (idempotent): the user as registered and whether it is new.

    The row is read under a lock in the registering transaction, so a deletion racing the call
    waits for it; one that came between the insert and the read makes the call register again.
    """
    while True:
        with transaction.atomic():
            created = users_register(user_ids=[user_id], actor=actor)[0] == 1
            found = list(User.objects.raw("SELECT * FROM users_user WHERE id = %s FOR NO KEY UPDATE", [user_id]))
            if found:
                return found[0], created


def users_register(*, user_ids: list[int], actor: str) -> tuple[int, int]:
    """Register users by id in one statement; returns (created, existing)."""
    ids = sorted(set(user_ids))
    if not ids:
        return 0, 0
    with transaction.atomic():
        created = users_insert(user_ids=ids)
        if created:
            rollout_join_users(user_ids=created, actor=actor)
    return len(created), len(ids) - len(created)


def users_insert(*, user_ids: list[int]) -> list[int]:
    """Insert the users not registered yet, in one statement, and return their ids: the caller makes them
    join their segments (rollout_join_users, or an attribute write's evaluation) in its transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO users_user (id, created_at) SELECT unnest(%s::bigint[]), {CLOCK}"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            [sorted(set(user_ids))],
        )
        return sorted(row[0] for row in cursor.fetchall())


def user_delete(*, user_id: int, actor: str) -> int:
    """Delete a user; each of its memberships leaves with a `user_deleted` event. Returns how many."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM users_user WHERE id = %s FOR UPDATE", [user_id])
            if cursor.fetchone() is None:
                raise UserNotFound(user_id)
        removed = memberships_remove_all(user_id=user_id, source="user_deleted", actor=actor)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM users_user WHERE id = %s", [user_id])
    return removed


def users_seed(*, count: int, start: int, actor: str, progress: Callable[[int], None] | None = None) -> int:
    """Register users start..start+count-1 in batches of set-based inserts; returns how many were new."""
    created = 0
    batch = 100_000
    for batch_start in range(start, start + count, batch):
        batch_end = min(batch_start + batch, start + count) - 1
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO users_user (id, created_at) SELECT x, {CLOCK}"
                    " FROM generate_series(%s::bigint, %s::bigint) AS g(x)"
                    " WHERE true ON CONFLICT (id) DO NOTHING RETURNING id",
                    [batch_start, batch_end],
                )
                new_ids = [row[0] for row in cursor.fetchall()]
            if new_ids:
                rollout_join_users(user_ids=new_ids, actor=actor)
            created += len(new_ids)
        if progress:
            progress(batch_end - batch_start + 1)
    return created
