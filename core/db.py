"""SQL shared by several services: the clock of every write, the rollout bucket, the rollout lock."""

from django.db import connection

# The clock of every write: read when the row changes, after the locks the change waited for, so
# that for each membership (and each user, for writers holding its lock) `at` follows commit order.
CLOCK = "clock_timestamp()"


def bucket_sql(slug: str, user_id: str) -> str:
    """SQL for the rollout bucket of API.md: the first 32 bits of md5(slug:user_id) mod 10000."""
    return f"(('x' || substr(md5({slug} || ':' || {user_id}::text), 1, 8))::bit(32)::bigint %% 10000)"


ROLLOUT_LOCK_KEY = 7_146_917_263  # any constant; names the one lock that orders rollouts and registrations


def rollout_lock(*, shared: bool) -> None:
    """Hold, until the transaction ends, the lock that registrations take shared and rollout changes exclusive.

    A registration then sees every rollout percent as of after any change in flight, and a rollout
    sees every user registered before it.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(%s)", [ROLLOUT_LOCK_KEY])
