import csv
import io
import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from core.errors import UserNotFound
from reports import export
from reports.export import HistoryQuery
from reports.periods import Month, period_of
from reports.services import (
    NAME_RE,
    history_csv,
    report_copy,
    report_open,
    report_write,
    reports_purge,
    user_history,
)
from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, memberships_expire, memberships_update, rollout_apply, segment_delete
from users.models import User
from users.services import user_delete

AUGUST = period_of(Month(2023, 8))
SEPTEMBER = period_of(Month(2023, 9))


def csv_of(query: HistoryQuery, **flags) -> bytes:
    """The CSV both ways, streamed and copied to a file, which must agree to the byte."""
    streamed = b"".join(history_csv(query=query, **flags))
    out = io.BytesIO()
    rows = report_copy(out, query=query, **flags)
    assert out.getvalue() == streamed
    records = list(csv.reader(io.StringIO(streamed.decode()), delimiter=";"))
    assert rows == len(records) - (1 if flags.get("header") else 0)
    return streamed


def test_history_csv__month_boundary__each_event_in_its_own_month(boundary):
    assert csv_of(HistoryQuery(period=AUGUST)) == (
        b"1002;AVITO_DISCOUNT_30;added;2023-08-01T00:00:00Z\n"
        b"1000;AVITO_VOICE_MESSAGES;added;2023-08-31T10:25:04Z\n"
        b"1000;AVITO_DISCOUNT_30;added;2023-08-31T23:59:59Z\n"
    )
    assert csv_of(HistoryQuery(period=SEPTEMBER)) == (
        b"1000;AVITO_VOICE_MESSAGES;added;2023-09-01T00:00:00Z\n1000;AVITO_DISCOUNT_30;removed;2023-09-01T00:00:00Z\n"
    )
    assert csv_of(HistoryQuery(period=period_of(Month(2023, 7)))) == (
        b"1002;AVITO_VOICE_MESSAGES;added;2023-07-31T23:59:59Z\n"
    )


def test_history_csv__several_months__ordered_by_time_then_id(boundary):
    assert csv_of(HistoryQuery(period=period_of(Month(2023, 7), Month(2023, 9))), header=True, detail=True) == (
        b"user_id;segment;operation;at;source;actor\n"
        b"1002;AVITO_VOICE_MESSAGES;added;2023-07-31T23:59:59Z;rollout;ops\n"
        b"1002;AVITO_DISCOUNT_30;added;2023-08-01T00:00:00Z;api;crm\n"
        b"1000;AVITO_VOICE_MESSAGES;added;2023-08-31T10:25:04Z;admin;anna\n"
        b"1000;AVITO_DISCOUNT_30;added;2023-08-31T23:59:59Z;api;crm\n"
        b"1000;AVITO_VOICE_MESSAGES;added;2023-09-01T00:00:00Z;api;crm\n"
        b"1000;AVITO_DISCOUNT_30;removed;2023-09-01T00:00:00Z;ttl;system\n"
    )


def test_history_csv__header_without_detail__four_column_header(boundary):
    assert csv_of(HistoryQuery(period=period_of(Month(2023, 7))), header=True) == (
        b"user_id;segment;operation;at\n1002;AVITO_VOICE_MESSAGES;added;2023-07-31T23:59:59Z\n"
    )


def test_history_csv__empty_period__empty_or_header_only(boundary):
    query = HistoryQuery(period=period_of(Month(2022, 1)))
    assert csv_of(query) == b""
    assert csv_of(query, header=True, detail=True) == b"user_id;segment;operation;at;source;actor\n"


@pytest.mark.parametrize(
    ("user_id", "segment", "expected"),
    [
        (1000, None, [b"VOICE_MESSAGES;added;2023-08-31T10", b"DISCOUNT_30;added;2023-08-31T23"]),
        (None, "AVITO_DISCOUNT_30", [b"1002;AVITO_DISCOUNT_30", b"1000;AVITO_DISCOUNT_30"]),
        (1002, "AVITO_DISCOUNT_30", [b"1002;AVITO_DISCOUNT_30"]),
        (1002, "AVITO_VOICE_MESSAGES", []),
        (42, None, []),
    ],
)
def test_history_csv__filters__only_matching_events(boundary, user_id, segment, expected):
    lines = csv_of(HistoryQuery(period=AUGUST, user_id=user_id, segment=segment)).splitlines()
    assert len(lines) == len(expected)
    assert all(part in line for part, line in zip(expected, lines, strict=True))


def test_history_csv__actor_with_separator_quote_newline_or_empty__quoted_rfc4180(event, utc, db):
    actors = ["a;b", 'say "hi"', "two\nlines", "cr\rhere", "", "plain name", "ünïcödé 名前"]
    for second, actor in enumerate(actors):
        event(7, "S", "added", utc(2023, 8, 2, 0, 0, second), actor=actor)
    assert (
        csv_of(HistoryQuery(period=AUGUST), detail=True)
        == (
            '7;S;added;2023-08-02T00:00:00Z;api;"a;b"\n'
            '7;S;added;2023-08-02T00:00:01Z;api;"say ""hi"""\n'
            '7;S;added;2023-08-02T00:00:02Z;api;"two\nlines"\n'
            '7;S;added;2023-08-02T00:00:03Z;api;"cr\rhere"\n'
            "7;S;added;2023-08-02T00:00:04Z;api;\n"
            "7;S;added;2023-08-02T00:00:05Z;api;plain name\n"
            "7;S;added;2023-08-02T00:00:06Z;api;ünïcödé 名前\n"
        ).encode()
    )


def test_history_csv__more_rows_than_a_chunk__every_row_once_in_order(utc, db):
    start = utc(2023, 8, 1)
    count = export.CHUNK_ROWS * 2 + 7
    HistoryEvent.objects.bulk_create(
        HistoryEvent(
            user_id=i,
            segment_slug="S",
            operation="added",
            source="import",
            actor="",
            at=start + timedelta(seconds=i // 3),
        )
        for i in range(count, 0, -1)
    )
    data = csv_of(HistoryQuery(period=AUGUST), detail=True)
    expected = sorted(range(1, count + 1), key=lambda i: (i // 3, -i))  # ids were given in reverse
    assert [int(line.split(b";")[0]) for line in data.splitlines()] == expected
    assert data.splitlines()[0].endswith(b";import;")


@pytest.mark.parametrize(
    ("user_id", "segment"), [(None, None), (1000, None), (None, "AVITO_DISCOUNT_30"), (1000, "AVITO_DISCOUNT_30")]
)
def test_history_csv__due_membership_not_swept__removed_at_expires_at_with_ttl(event, utc, member, user_id, segment):
    user, seg = member
    event(1000, seg.slug, "added", utc(2023, 8, 31, 12, 0, 0))
    Membership.objects.create(user=user, segment=seg, expires_at=utc(2023, 8, 31, 23, 59, 59))
    expected = (
        b"1000;AVITO_DISCOUNT_30;added;2023-08-31T12:00:00Z;api;crm\n"
        b"1000;AVITO_DISCOUNT_30;removed;2023-08-31T23:59:59Z;ttl;system\n"
    )
    assert csv_of(HistoryQuery(period=AUGUST, user_id=user_id, segment=segment), detail=True) == expected
    assert not Membership.objects.exists()
    assert memberships_expire() == 0
    assert csv_of(HistoryQuery(period=AUGUST), detail=True) == expected
    assert csv_of(HistoryQuery(period=SEPTEMBER)) == b""


def test_history_csv__sweep_ran_before__expiry_once_at_its_time(utc, member):
    user, segment = member
    Membership.objects.create(user=user, segment=segment, expires_at=utc(2023, 9, 1, 0, 0, 0))
    assert memberships_expire() == 1
    assert csv_of(HistoryQuery(period=SEPTEMBER, segment=segment.slug), detail=True) == (
        b"1000;AVITO_DISCOUNT_30;removed;2023-09-01T00:00:00Z;ttl;system\n"
    )
    assert csv_of(HistoryQuery(period=AUGUST)) == b""


def test_history_csv__membership_expiring_later__not_removed_yet(member, without_journal):
    user, segment = member
    with without_journal():
        Membership.objects.create(user=user, segment=segment, expires_at=timezone.now() + timedelta(days=40))
    now = timezone.now()
    query = HistoryQuery(period=period_of(Month(now.year - 1, 1), Month(now.year + 1, 12)))
    assert csv_of(query) == b""
    assert Membership.objects.count() == 1


def test_history_csv__every_source__written_by_its_service(member):
    user, segment = member
    User.objects.create(id=1001)
    Segment.objects.create(slug="GONE")
    memberships_update(user_id=1000, add=[AddItem(slug="GONE")], remove=[], source="api", actor="crm")
    memberships_update(user_id=1001, add=[AddItem(slug="GONE")], remove=[], source="admin", actor="anna")
    rollout_apply(slug=segment.slug, percent=100, actor="ops")
    segment_delete(slug="GONE", actor="ops")
    user_delete(user_id=1001, actor="crm")
    Membership.objects.filter(user_id=1000).update(expires_at=timezone.now() - timedelta(seconds=1))
    HistoryEvent.objects.create(user_id=1000, segment_slug="IMPORTED", operation="added", source="import", actor="csv")
    now = timezone.now()
    query = HistoryQuery(period=period_of(Month(now.year - 1, 1), Month(now.year + 1, 12)))
    rows = [line.split(b";") for line in csv_of(query, detail=True).splitlines()]
    assert sorted((r[0], r[1], r[2], r[4], r[5]) for r in rows) == sorted(
        [
            (b"1000", b"GONE", b"added", b"api", b"crm"),
            (b"1001", b"GONE", b"added", b"admin", b"anna"),
            (b"1000", b"AVITO_DISCOUNT_30", b"added", b"rollout", b"ops"),
            (b"1001", b"AVITO_DISCOUNT_30", b"added", b"rollout", b"ops"),
            (b"1000", b"GONE", b"removed", b"segment_deleted", b"ops"),
            (b"1001", b"GONE", b"removed", b"segment_deleted", b"ops"),
            (b"1001", b"AVITO_DISCOUNT_30", b"removed", b"user_deleted", b"crm"),
            (b"1000", b"AVITO_DISCOUNT_30", b"removed", b"ttl", b"system"),
            (b"1000", b"IMPORTED", b"added", b"import", b"csv"),
        ]
    )


def test_user_history__unknown_user__user_not_found(db):
    with pytest.raises(UserNotFound):
        user_history(user_id=5, period=AUGUST)


def test_user_history__known_user__own_events_oldest_first_after_sweep(utc, member, boundary):
    user, segment = member
    Membership.objects.create(user=user, segment=segment, expires_at=utc(2023, 8, 15))
    found = user_history(user_id=1000, period=AUGUST)
    assert [(e.segment_slug, e.operation, e.source) for e in found] == [
        ("AVITO_DISCOUNT_30", "removed", "ttl"),
        ("AVITO_VOICE_MESSAGES", "added", "admin"),
        ("AVITO_DISCOUNT_30", "added", "api"),
    ]


def test_report_write__two_reports__random_names_in_media_reports(boundary):
    first = report_write(query=HistoryQuery(period=AUGUST))
    second = report_write(query=HistoryQuery(period=AUGUST))
    assert first.name != second.name
    assert NAME_RE.fullmatch(first.name) and NAME_RE.fullmatch(second.name)
    assert (first.rows, second.rows) == (3, 3)
    path = settings.MEDIA_ROOT / "reports" / first.name
    assert path.read_bytes() == b"".join(history_csv(query=HistoryQuery(period=AUGUST)))


def test_report_open__traversal_or_unknown_name__none(boundary):
    report = report_write(query=HistoryQuery(period=AUGUST))
    (settings.MEDIA_ROOT / "secret.csv").write_text("secret")
    (settings.MEDIA_ROOT / "reports" / "notes.csv").write_text("notes")
    (settings.MEDIA_ROOT / "reports" / ("B" * 32 + ".csv")).mkdir()
    with report_open(name=report.name) as file:
        assert file.read().count(b"\n") == 3
    for name in [
        "../secret.csv",
        "notes.csv",
        report.name[:-4],
        report.name + "/",
        "/" + report.name,
        "A" * 32 + ".csv",
        "B" * 32 + ".csv",
        "..",
        "",
        report.name.replace(report.name[0], "%", 1),
    ]:
        assert report_open(name=name) is None, name


def test_reports_purge__old_and_new_files__only_old_report_files_deleted(boundary):
    old, new = (report_write(query=HistoryQuery(period=AUGUST)) for _ in range(2))
    folder = settings.MEDIA_ROOT / "reports"
    (folder / "keep.txt").write_text("not a report")
    two_days_ago = time.time() - 2 * 86400
    for name in (old.name, "keep.txt"):
        os.utime(folder / name, (two_days_ago, two_days_ago))
    assert reports_purge(older_than=timedelta(days=1)) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted([new.name, "keep.txt"])
    assert reports_purge(older_than=timedelta(0)) == 1


def test_reports_purge__no_reports_folder__nothing(db):
    assert reports_purge(older_than=timedelta(0)) == 0


def test_copy_csv__any_rows__same_bytes_as_the_streamed_lines(utc, db):
    actors = ["", "a;b", '"', "x\ny", "ok", "ü"]
    HistoryEvent.objects.bulk_create(
        HistoryEvent(
            user_id=i,
            segment_slug=f"S.{i % 7}",
            operation="added" if i % 2 else "removed",
            source="api",
            actor=actors[i % len(actors)],
            at=utc(2023, 8, 1) + timedelta(microseconds=i * 999_999),
        )
        for i in range(1, 3001)
    )
    query = HistoryQuery(period=AUGUST)
    for detail in (False, True):
        copied = io.BytesIO()
        assert export.copy_csv(copied, *export.copy_sql(query, detail=detail)) == 3000
        fallback = b"".join(data for data, _ in export.chunks(export.lines(query, detail=detail)))
        assert copied.getvalue() == fallback


def test_copy_csv__query_fails__django_database_error(db):
    """core/replica.read reads again from the primary on Django's DatabaseError: COPY's errors must be it."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '50ms'")
    with pytest.raises(OperationalError):
        export.copy_csv(io.BytesIO(), "SELECT pg_sleep(1)", [])


def test_history_csv__expiries_either_side_of_midnight__each_in_its_months_report(utc, member, without_journal):
    user, segment = member
    other = Segment.objects.create(slug="AVITO_VOICE_MESSAGES")
    with without_journal():
        Membership.objects.create(user=user, segment=segment, expires_at=utc(2023, 8, 31, 23, 59, 59))
        Membership.objects.create(user=user, segment=other, expires_at=utc(2023, 9, 1, 0, 0, 0))
    assert csv_of(HistoryQuery(period=SEPTEMBER), detail=True) == (
        b"1000;AVITO_VOICE_MESSAGES;removed;2023-09-01T00:00:00Z;ttl;system\n"
    )
    assert csv_of(HistoryQuery(period=AUGUST), detail=True) == (
        b"1000;AVITO_DISCOUNT_30;removed;2023-08-31T23:59:59Z;ttl;system\n"
    )
    assert HistoryEvent.objects.count() == 2
