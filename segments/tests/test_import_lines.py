"""The one parser of import lines (services/import_lines.py): what the service writes, it reads (a report's
lines: reports/tests/test_csv_format.py)."""

from datetime import UTC, datetime

import pytest

from segments.services.import_lines import LineParser

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def parse(*lines: str) -> list:
    parser = LineParser(NOW)
    return [parser.parse(line.encode(), number) for number, line in enumerate(lines, start=1)]


def test_parse__admin_member_export__ids_and_expiries_other_columns_ignored():
    assert parse(
        "user_id,expires_at,source,added_at",
        "4,2030-01-01T00:00:00Z,manual,2025-12-01T10:00:00Z",
        "5,,rollout,2025-12-01T10:00:00Z",
    ) == [None, (4, "2030-01-01T00:00:00+00:00"), (5, None)]


def test_parse__report_without_header__semicolon_lines_read_as_a_report():
    assert parse("7;SEG;added;2025-12-01T10:00:00Z", '8;SEG;removed;2025-12-01T10:00:00Z;api;"a;b"') == [
        (7, None),
        (8, None),
    ]


def test_parse__header_in_another_order__columns_found_by_name():
    assert parse("expires_at;user_id", "2030-01-01T00:00:00Z;9", ";10") == [
        None,
        (9, "2030-01-01T00:00:00+00:00"),
        (10, None),
    ]


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (["user_id,name", "1"], "unknown column 'name' in the header: known are user_id, expires_at"),
        (["user_id,user_id", "1"], "a column named twice in the header"),
        (["1,2030-01-01T00:00:00Z,x"], "expected 'user_id' or 'user_id,expires_at'"),
        (["user_id,expires_at,source", "1,,manual,x"], "expected at most 3 columns"),
        (["1;SEG;added;at;api;actor;more"], "expected a report's line"),
        (['1;SEG;added;at;api;"open'], "a quoted field that does not end"),
    ],
)
def test_parse__bad_header_or_columns__the_line_says_why(lines, error):
    problems = [result for result in parse(*lines) if isinstance(result, str)]
    assert problems and problems[0].startswith(error)


def test_parse__header_user_id_only__lines_may_still_give_an_expiry():
    assert parse("user_id", "3,2030-01-01T00:00:00Z") == [None, (3, "2030-01-01T00:00:00+00:00")]
