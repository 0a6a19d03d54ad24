"""The few places where PostgreSQL and SQLite differ, each behind one small function."""

import hashlib

from django.db import connection
from django.db.backends.signals import connection_created


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def now_sql() -> str:
    """The database's clock as SQL (transaction start on PostgreSQL)."""
    return "now()" if is_postgres() else "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')"


def bucket_sql(slug: str, user_id: str) -> str:
    """SQL for the rollout bucket of API.md: the first 32 bits of md5(slug:user_id) mod 10000."""
    if is_postgres():
        return f"(('x' || substr(md5({slug} || ':' || {user_id}::text), 1, 8))::bit(32)::bigint %% 10000)"
    return f"(hexint(substr(md5({slug} || ':' || {user_id}), 1, 8)) %% 10000)"


def in_list(column: str, values: list) -> tuple[str, list]:
    """`column IN values` as SQL and params; one array parameter on PostgreSQL."""
    if is_postgres():
        return f"{column} = ANY(%s)", [list(values)]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def lock_clause(mode: str) -> str:
    """A row-lock clause such as `FOR KEY SHARE` on PostgreSQL; SQLite locks the whole file."""
    return f" FOR {mode}" if is_postgres() else ""


def postgres_only(sql: str):
    """For a migration's RunPython: run `sql` on PostgreSQL; SQLite has no equivalent and needs none."""

    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


ROLLOUT_LOCK_KEY = 7_146_917_263  # any constant; names the one lock that orders rollouts and registrations


def rollout_lock(*, shared: bool) -> None:
    """Hold, until the transaction ends, the lock that registrations take shared and rollout changes exclusive.

    A registration then sees every rollout percent as of after any change in flight, and a rollout
    sees every user registered before it. SQLite has one writer at a time and needs no lock.
    """
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(%s)", [ROLLOUT_LOCK_KEY])


def _md5(text):
    return None if text is None else hashlib.md5(str(text).encode()).hexdigest()


def _hexint(text):
    return None if text is None else int(text, 16)


def _register(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("md5", 1, _md5, deterministic=True)
        connection.connection.create_function("hexint", 1, _hexint, deterministic=True)


def install_sqlite_functions() -> None:
    connection_created.connect(_register, dispatch_uid="segmenter_sqlite_functions")
