import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports import csv_format, export
from reports.export import HistoryQuery
from reports.periods import Month, period_of
from segments.models import HistoryEvent
from segments.services.import_lines import LineParser

ACTORS = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40)
TIMES = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@given(actor=ACTORS, at=TIMES)
def test_line__any_actor__csv_readers_get_every_field_back(actor, at):
    text = csv_format.line(1000, "AVITO_DISCOUNT_30", "added", at, "api", actor, detail=True)
    assert text.endswith("\n")
    (record,) = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    shown = "'" + actor if csv_format.is_formula(actor) else actor
    assert record == ["1000", "AVITO_DISCOUNT_30", "added", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "api", shown]


def test_line__formula_like_actor__prefixed_so_spreadsheets_show_text():
    at = datetime(2023, 8, 31, 10, 25, 4, tzinfo=UTC)
    lines = [csv_format.line(1, "S", "added", at, "api", actor, detail=True) for actor in ("=cmd()", "@SUM(A1)", "ok")]
    assert lines == [
        "1;S;added;2023-08-31T10:25:04Z;api;'=cmd()\n",
        "1;S;added;2023-08-31T10:25:04Z;api;'@SUM(A1)\n",
        "1;S;added;2023-08-31T10:25:04Z;api;ok\n",
    ]


def test_timestamp__other_zone_and_microseconds__utc_seconds_truncated():
    at = datetime(2023, 9, 1, 2, 0, 0, 999999, tzinfo=timezone(timedelta(hours=3)))
    assert csv_format.timestamp(at) == "2023-08-31T23:00:00Z"


def test_header__detail_or_not__column_names():
    assert csv_format.header(detail=False) == "user_id;segment;operation;at\n"
    assert csv_format.header(detail=True) == "user_id;segment;operation;at;source;actor\n"


# The database fixture is one transaction for all examples; each example starts by emptying history.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actors=st.lists(
        ACTORS | st.sampled_from(["=cmd()", "+1", "-2", "@x", "\tx", "\r=y", "'=z"]), min_size=1, max_size=5
    )
)
def test_copy_csv__any_actors__same_bytes_as_the_streamed_lines(db, actors):
    HistoryEvent.objects.all().delete()
    for second, actor in enumerate(actors):
        HistoryEvent.objects.create(
            user_id=1,
            segment_slug="S",
            operation="added",
            source="api",
            actor=actor,
            at=datetime(2023, 8, 1, 0, 0, second, tzinfo=UTC),
        )
    query = HistoryQuery(period=period_of(Month(2023, 8)))
    copied = io.BytesIO()
    export.copy_csv(copied, *export.copy_sql(query, detail=True))
    assert copied.getvalue() == "".join(export.lines(query, detail=True)).encode()


def test_line__formula_after_nfkc_normalisation__prefixed_and_actor_kept():
    at = datetime(2023, 8, 31, 10, 25, 4, tzinfo=UTC)
    actors = ("＝cmd()", "﹢1", "＠SUM(A1)", "⁼x", "名前")  # full-width, small and superscript forms
    lines = [csv_format.line(1, "S", "added", at, "api", actor, detail=True) for actor in actors]
    assert [line.rsplit(";", 1)[1] for line in lines] == ["'＝cmd()\n", "'﹢1\n", "'＠SUM(A1)\n", "'⁼x\n", "名前\n"]


def test_formula_rule__every_code_point__postgres_and_python_agree(db):
    """COPY's SQL test and csv_format.is_formula flag the same first characters, all of Unicode."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i FROM generate_series(1, 1114111) AS i"
            f" WHERE i NOT BETWEEN 55296 AND 57343 AND {csv_format.FORMULA_SQL.replace('actor', 'chr(i) || %s')}",
            ["x", csv_format.FORMULA_SQL_PATTERN],
        )
        in_sql = sorted(row[0] for row in cursor.fetchall())
    in_python = [i for i in range(1, 0x110000) if not 0xD800 <= i <= 0xDFFF and csv_format.is_formula(chr(i) + "x")]
    assert in_sql == in_python
    assert {0xFF1D, 0xFE62, 0x207C, ord("="), ord("\t")} <= set(in_python)


def test_copy_csv__full_width_formula_actor__prefixed_as_in_python(db):
    for second, actor in enumerate(["＝HYPERLINK(1)", "﹫x", "plain"]):
        HistoryEvent.objects.create(
            user_id=1,
            segment_slug="S",
            operation="added",
            source="api",
            actor=actor,
            at=datetime(2023, 8, 1, 0, 0, second, tzinfo=UTC),
        )
    query = HistoryQuery(period=period_of(Month(2023, 8)))
    copied = io.BytesIO()
    export.copy_csv(copied, *export.copy_sql(query, detail=True))
    assert copied.getvalue() == "".join(export.lines(query, detail=True)).encode()
    assert [line.rsplit(b";", 1)[1] for line in copied.getvalue().splitlines()] == [
        "'＝HYPERLINK(1)".encode(),
        "'﹫x".encode(),
        b"plain",
    ]


AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("detail", [False, True])
def test_report_lines__read_by_the_import_parser__user_ids_taken(detail):
    """What the service writes, it reads: a report (with its header) imports as its user ids."""
    header = csv_format.header(detail=detail).rstrip("\n")
    lines = [csv_format.line(7, "SEG", "added", AT, "api", 'ops;"team"', detail=detail).rstrip("\n")]
    lines.append(csv_format.line(8, "SEG", "removed", AT, "ttl", "=1+2", detail=detail).rstrip("\n"))
    assert [LineParser(AT).parse(text.encode(), number) for number, text in enumerate([header, *lines], start=1)] == [
        None,
        (7, None),
        (8, None),
    ]
