"""History by month: the partitioned table, its migration and the worker's partitions ahead."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from segments.models import HistoryEvent
from segments.services import AddItem, history_partitions, history_partitions_ensure, memberships_update

BEFORE = ("segments", "0005_memberships_update_clock_after_locks")
AFTER = ("segments", "0006_historyevent_partitions")


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


def _rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, user_id, segment_slug, operation, source, actor, at, tableoid::regclass::text"
            " FROM segments_historyevent ORDER BY id"
        )
        return cursor.fetchall()


def _now_month() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')")
        return cursor.fetchone()[0]


def _partitioned() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'segments_historyevent'")
        return cursor.fetchone()[0] == "p"


@pytest.mark.django_db(transaction=True)
def test_migration__rows_across_months__same_rows_and_ids_each_in_its_month(latest_schema_after):
    _migrate(BEFORE)
    try:
        assert not _partitioned()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)"
                " SELECT g, 'S' || (g % 7), CASE WHEN g % 2 = 0 THEN 'added' ELSE 'removed' END, 'api', 'a' || g,"
                " timestamptz '2022-12-31 23:59:59.999999+00' + (g - 1) * interval '11 days'"
                " FROM generate_series(1, 90) g"
            )
        before = [row[:7] for row in _rows()]
        next_id = before[-1][0] + 1
    finally:
        _migrate(AFTER)
    assert _partitioned()
    after = _rows()
    assert [row[:7] for row in after] == before
    for row in after:
        assert row[7] == f"segments_historyevent_{row[6]:%Y_%m}"
    assert f"segments_historyevent_{_now_month()}" in history_partitions()
    event = HistoryEvent.objects.create(user_id=1, segment_slug="S", operation="added", source="api")
    assert event.id == next_id


def test_insert__service_and_old_month__each_lands_in_its_month_partition(users, segments, event):
    memberships_update(user_id=1000, add=[AddItem("AVITO_DISCOUNT_30")], remove=[], source="api", actor="crm")
    event(1002, "AVITO_DISCOUNT_30", "added", datetime(2019, 4, 30, 23, 59, 59, tzinfo=UTC))
    where = {row[1]: row[7] for row in _rows()}
    assert where[1000] == f"segments_historyevent_{_now_month()}"
    assert where[1002] == "segments_historyevent_default"  # no partition of April 2019 yet

    assert history_partitions_ensure() == 1  # the month found in the default partition
    assert _rows()[-1][7] == "segments_historyevent_2019_04"
    assert history_partitions_ensure() == 0


def test_history_partitions_ensure__months_ahead_missing__created(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months', 'YYYY_MM')")
        last = f"segments_historyevent_{cursor.fetchone()[0]}"
        cursor.execute(f'DROP TABLE "{last}"')
    assert last not in history_partitions()
    assert history_partitions_ensure() == 1
    assert last in history_partitions()
