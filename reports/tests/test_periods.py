from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.periods import END_OF_TIME, Month, month_parse, period_of


@pytest.mark.parametrize(
    ("text", "month"), [("2023-5", Month(2023, 5)), ("2023-05", Month(2023, 5)), ("0001-12", Month(1, 12))]
)
def test_month_parse__either_spelling__month(text, month):
    assert month_parse(text) == month


@pytest.mark.parametrize(
    "value",
    [
        "2023-13",
        "2023-0",
        "2023-00",
        "0000-05",
        "2023",
        "2023-",
        "-05",
        "23-05",
        "2023-005",
        "20230-1",
        "2023/05",
        "2023-05-01",
        " 2023-05",
        "2023-05\n",
        "august",
        "",
        "٢٠٢٣-05",
        202305,
        None,
        ["2023-05"],
    ],
)
def test_month_parse__not_a_month__value_error(value):
    with pytest.raises(ValueError):
        month_parse(value)


def test_period_of__one_month__from_its_first_instant_to_the_next_months():
    period = period_of(Month(2023, 8))
    assert (period.start, period.end) == (datetime(2023, 8, 1, tzinfo=UTC), datetime(2023, 9, 1, tzinfo=UTC))


def test_period_of__across_new_year__both_months_inclusive():
    period = period_of(Month(2023, 11), Month(2024, 2))
    assert (period.start, period.end) == (datetime(2023, 11, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert str(period) == "2023-11_2024-02"


def test_period_of__to_before_from__value_error():
    with pytest.raises(ValueError, match="before"):
        period_of(Month(2023, 9), Month(2023, 8))


def test_period_of__last_representable_month__ends_at_end_of_time():
    assert period_of(Month(9999, 12)).end == END_OF_TIME


@given(st.integers(1, 9990), st.integers(1, 12), st.integers(0, 60))
def test_period_of__consecutive_periods__tile_time_without_gap_or_overlap(year, month, length):
    first = Month(year, month)
    last = Month(year + (month - 1 + length) // 12, (month - 1 + length) % 12 + 1)
    period = period_of(first, last)
    following = period_of(Month(last.year + last.month // 12, last.month % 12 + 1))
    assert period.start < period.end == following.start
    assert period.start.day == 1 and period.start.tzinfo is UTC
