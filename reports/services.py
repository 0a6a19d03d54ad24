"""History reads and CSV reports. Every read first writes the TTL expiries that are due, so an
expired membership shows as `removed` at its `expires_at` whether or not the sweep has run."""

import logging
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from core import replica
from core.errors import UserNotFound
from reports import csv_format, export
from reports.errors import ReportNotWritten, ReportTooLarge
from reports.export import HistoryQuery
from reports.periods import Period
from segments.models import Segment
from segments.services import memberships_expire
from users.models import User

logger = logging.getLogger(__name__)

REPORTS_DIR = "reports"
# 24 random bytes: 192 bits, 32 URL-safe characters.
NAME_RE = re.compile(r"[A-Za-z0-9_-]{32}\.csv")


@dataclass(frozen=True)
class ReportFile:
    name: str  # the file name inside REPORTS_DIR
    rows: int


def history_sweep(*, user_id: int | None = None, segment: str | None = None) -> int:
    """Write the `ttl` removals that are due among the memberships a read will look at."""
    segment_id = None
    if segment is not None:
        segment_id = Segment.objects.filter(slug=segment).values_list("id", flat=True).first()
        if segment_id is None:
            return 0
    return memberships_expire(user_id=user_id, segment_id=segment_id)


def user_history(*, user_id: int, period: Period, page: Callable = list):
    """`page` (a paginator's) of a registered user's events in the period, oldest first.

    Read from the replica when it is fresh enough, unless the sweep has just written some.
    """
    if not User.objects.filter(pk=user_id).exists():
        raise UserNotFound(user_id)
    swept = history_sweep(user_id=user_id)
    query = HistoryQuery(period=period, user_id=user_id)
    return replica.read(lambda alias: page(export.events(query, alias)), after_write=swept > 0)


def report_size_check(*, query: HistoryQuery, using: str = "default") -> None:
    """Refuse a report of more than SEGMENTER_REPORT_MAX_ROWS rows before anything is written.

    The count stops at the cap plus one (`SELECT count(*) FROM (SELECT ... LIMIT cap+1)`), so it
    reads at most that many index entries of the period, and no rows past the cap.
    """
    cap = settings.SEGMENTER_REPORT_MAX_ROWS
    if export.events(query, using).order_by()[: cap + 1].count() > cap:
        raise ReportTooLarge(cap)


def history_csv(*, query: HistoryQuery, header: bool = False, detail: bool = False) -> Iterator[bytes]:
    """Sweep now, check the size, then return the CSV as byte chunks to stream (rows are read lazily)."""
    history_sweep(user_id=query.user_id, segment=query.segment)
    report_size_check(query=query)
    first = [csv_format.header(detail=detail).encode()] if header else []
    return _stream(first, export.chunks(export.lines(query, detail=detail)))


def _stream(first: list[bytes], rest: Iterator[tuple[bytes, int]]) -> Iterator[bytes]:
    yield from first
    for data, _ in rest:
        yield data


def report_copy(out: BinaryIO, *, query: HistoryQuery, header: bool = False, detail: bool = False) -> int:
    """Write the CSV to a binary file; return the number of events (COPY on PostgreSQL)."""
    history_sweep(user_id=query.user_id, segment=query.segment)
    return _copy(out, query=query, header=header, detail=detail)


def _copy(out: BinaryIO, *, query: HistoryQuery, header: bool, detail: bool, using: str = "default") -> int:
    if header:
        out.write(csv_format.header(detail=detail).encode())
    return export.write(out, query, detail=detail, using=using)


def report_write(*, query: HistoryQuery, header: bool = False, detail: bool = False) -> ReportFile:
    """Write the CSV into storage as `reports/<192 random bits>.csv`, spooled through a temp file;
    a report over SEGMENTER_REPORT_MAX_ROWS is refused first (ReportTooLarge) and writes nothing.
    Read from the replica when it is fresh enough, unless the sweep has just written some."""
    swept = history_sweep(user_id=query.user_id, segment=query.segment)
    return replica.read(lambda alias: _report_write(query, header, detail, alias), after_write=swept > 0)


def _report_write(query: HistoryQuery, header: bool, detail: bool, using: str) -> ReportFile:
    report_size_check(query=query, using=using)
    path = f"{REPORTS_DIR}/{secrets.token_urlsafe(24)}.csv"
    try:
        with tempfile.TemporaryFile() as spool:
            rows = _copy(spool, query=query, header=header, detail=detail, using=using)
            name = default_storage.save(path, File(spool, name="report.csv"))
    except OSError as exc:  # disk full, read-only or missing folder: the client may retry, the operator must act
        logger.error("report not written: %s", exc)
        raise ReportNotWritten(f"The report could not be written to storage ({exc.strerror or exc}).") from None
    return ReportFile(name=name.rsplit("/", 1)[-1], rows=rows)


def report_open(*, name: str) -> File | None:
    """The report file called `name`, opened for reading; None for any other name."""
    if not NAME_RE.fullmatch(name):
        return None
    try:
        return default_storage.open(f"{REPORTS_DIR}/{name}", "rb")
    except OSError:  # missing, or not a file
        return None


def reports_purge(*, older_than: timedelta | None = None) -> int:
    """Delete report files last written more than `older_than` (default SEGMENTER_REPORT_TTL_HOURS)
    ago; return how many."""
    if older_than is None:
        older_than = timedelta(hours=settings.SEGMENTER_REPORT_TTL_HOURS)
    cutoff = timezone.now() - older_than
    try:
        _, names = default_storage.listdir(REPORTS_DIR)
    except FileNotFoundError:
        return 0
    deleted = 0
    for name in names:
        path = f"{REPORTS_DIR}/{name}"
        if NAME_RE.fullmatch(name) and default_storage.get_modified_time(path) < cutoff:
            default_storage.delete(path)
            deleted += 1
    return deleted
