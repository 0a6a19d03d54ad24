"""A month's reads touch only its partitions; purge_history drops whole months before a month."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from reports import export, services
from reports.export import HistoryQuery
from reports.periods import Month, Period
from segments.services import history_partitions, history_partitions_ensure
from users.models import User

MAY = Period(Month(2024, 5), Month(2024, 5))


@pytest.fixture
def months(db, event, utc):
    """User 1000's events in April, May and June 2024, each month in its partition."""
    User.objects.create(id=1000)
    for month in (4, 5, 6):
        event(1000, "AVITO_DISCOUNT_30", "added", utc(2024, month, 1))
        event(1000, "AVITO_DISCOUNT_30", "removed", utc(2024, month, 2))
    history_partitions_ensure()


def _scanned(plan: str) -> set[str]:
    return set(re.findall(r"segments_historyevent_\w+", plan))


def test_report_explain__one_month__reads_only_its_partition(months):
    sql, params = export.copy_sql(HistoryQuery(period=MAY), detail=True)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert _scanned(plan) == {"segments_historyevent_2024_05"}, plan


def test_history_listing_explain__one_month__reads_only_its_partition(months):
    plan = services.user_history(user_id=1000, period=MAY, page=lambda events: events[:100].explain())
    assert _scanned(plan) == {"segments_historyevent_2024_05"}, plan
    assert len(services.user_history(user_id=1000, period=MAY)) == 2


def _purge(before: str) -> str:
    out = StringIO()
    call_command("purge_history", "--before", before, stdout=out)
    return out.getvalue()


def test_purge_history__before_june__drops_april_and_may_only(months, utc, event):
    event(1000, "AVITO_DISCOUNT_30", "added", utc(1999, 1, 1))  # in the default partition
    kept = [name for name in history_partitions() if name >= "segments_historyevent_2024_06"]
    output = _purge("2024-06")
    assert history_partitions() == kept
    assert "segments_historyevent_2024_04: 2 events removed" in output
    assert "segments_historyevent_2024_05: 2 events removed" in output
    assert "segments_historyevent_default: 1 events removed" in output
    assert "purged 5 events before 2024-06" in output
    june = Period(Month(2024, 6), Month(2024, 6))
    assert len(services.user_history(user_id=1000, period=june)) == 2
    assert len(services.user_history(user_id=1000, period=Period(Month(1, 1), Month(2024, 5)))) == 0


@pytest.mark.parametrize("before", ["2024-13", "24-05", "2024-05-01", "", "0000-01", "9999-12"])
def test_purge_history__bad_month__command_error_and_nothing_dropped(months, before):
    partitions = history_partitions()
    with pytest.raises(CommandError, match="--before"):
        _purge(before)
    assert history_partitions() == partitions
