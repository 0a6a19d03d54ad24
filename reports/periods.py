"""Report periods: whole months in UTC, `from` and `to` both inclusive (API.md)."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{1,2})")
# The instant after every month a period can name (9999-12 has no "next month" in Python).
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    def next_start(self) -> datetime:
        if (self.year, self.month) == (9999, 12):
            return END_OF_TIME
        if self.month == 12:
            return datetime(self.year + 1, 1, 1, tzinfo=UTC)
        return datetime(self.year, self.month + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """Events with `start <= at < end`."""

    first: Month
    last: Month

    @property
    def start(self) -> datetime:
        return self.first.start()

    @property
    def end(self) -> datetime:
        return self.last.next_start()

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}_{self.last}"


def month_parse(value: object) -> Month:
    """`YYYY-M` or `YYYY-MM`, year 0001-9999, month 1-12; anything else raises ValueError."""
    match = MONTH_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("A month is YYYY-MM or YYYY-M, e.g. 2023-08.")
    year, month = int(match[1]), int(match[2])
    if year < 1:
        raise ValueError("The year must be 0001 or later.")
    if not 1 <= month <= 12:
        raise ValueError("The month must be 1 to 12.")
    return Month(year, month)


def period_of(first: Month, last: Month | None = None) -> Period:
    """The months `first` to `last` (default: `first`); ValueError when `last` is before `first`."""
    last = first if last is None else last
    if last < first:
        raise ValueError(f"The period ends ({last}) before it starts ({first}).")
    return Period(first, last)
