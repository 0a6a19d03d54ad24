"""SQL of the rollout shared by segments' services: the bucket and the lock that orders rollouts and registrations."""

from django.db import connection


def bucket_sql(slug: str, user_id: str) -> str:
    """SQL for the rollout bucket of API.md: the first 32 bits of md5(slug:user_id) mod 10000 (rollout.py
    `bucket` in Python)."""
    return f"(('x' || substr(md5({slug} || ':' || {user_id}::text), 1, 8))::bit(32)::bigint %% 10000)"


ROLLOUT_LOCK_KEY = 7_146_917_263  # any constant; names the one lock that orders rollouts and registrations


def rollout_lock(*, shared: bool) -> None:
    """Hold, until the transaction ends, the lock that registrations take shared and rollout changes exclusive.

    A registration then sees every rollout percent as of after any change in flight, and a rollout
    sees every user registered before it.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(%s)", [ROLLOUT_LOCK_KEY])
