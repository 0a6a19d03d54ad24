"""Migration 0010: an expiry stored past the bound before it (year 10000 in UTC, 'infinity') is repaired, and the
pages that failed on it open again; from then on the database refuses one (tests/test_models_constraints.py)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from segments.services import AddItem, memberships_update, segment_create
from users.services import users_register

BEFORE = ("segments", "0009_import_ttl_seconds_bigint")
AFTER = ("segments", "0010_membership_expires_at_range")
STORED = {1: "10000-01-01 04:59:59+00", 2: "infinity", 3: "9998-06-01 00:00:00+00", 4: None}


def _migrate(target: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate([target])


@pytest.mark.django_db(transaction=True)
def test_migration__expiries_past_the_bound__latest_allowed_and_pages_open(latest_schema_after, api, admin_client):
    users_register(user_ids=list(STORED), actor="t")
    segment_create(slug="FAR", actor="t")
    for user_id in STORED:
        memberships_update(user_id=user_id, add=[AddItem(slug="FAR")], remove=[], source="api", actor="t")
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            for user_id, stored in STORED.items():
                cursor.execute(
                    "UPDATE segments_membership SET expires_at = %s::timestamptz WHERE user_id = %s", [stored, user_id]
                )
    finally:
        _migrate(AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # the pages' code needs the later migrations too

    latest = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)
    response = api.get("/api/v1/segments/FAR/members/")
    assert response.status_code == 200
    assert {m["user_id"]: m["expires_at"] for m in response.json()["results"]} == {
        1: "9998-12-31T23:59:59Z",
        2: "9998-12-31T23:59:59Z",
        3: "9998-06-01T00:00:00Z",
        4: None,
    }
    assert api.get("/api/v1/users/1/").json()["memberships"][0]["expires_at"] == f"{latest:%Y-%m-%dT%H:%M:%SZ}"
    assert admin_client.get("/admin/segments/membership/").status_code == 200
    assert admin_client.get("/admin/users/user/2/change/").status_code == 200
