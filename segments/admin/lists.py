"""Admin list pieces that stay fast on tables of millions of rows."""

from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.db.models import Max, Min, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.functional import cached_property

from segments.models import Membership, MembershipActive
from segments.selectors import active_sql

MEMBER_COUNT_CAP = 10_000


def active_member_count(segment_ids: list[int]) -> int:
    """Active memberships of the segments, exact: every row (an index-only count) less the rows not
    active, which are due but not swept yet (found through the partial index on expires_at), never a
    read of every row's expiry."""
    rows = Membership.objects.filter(segment_id__in=segment_ids)
    return rows.count() - rows.filter(~MembershipActive("expires_at")).count()


def with_capped_member_counts(segments: QuerySet) -> QuerySet:
    """Annotate `member_rows` (memberships counted up to MEMBER_COUNT_CAP + 1, index-only) and
    `member_due` (expired, not swept yet): a list page costs at most CAP index entries per segment."""
    return segments.annotate(
        member_rows=RawSQL(
            "SELECT count(*) FROM (SELECT 1 FROM segments_membership m"
            " WHERE m.segment_id = segments_segment.id LIMIT %s) capped",
            [MEMBER_COUNT_CAP + 1],
        ),
        member_due=RawSQL(
            "SELECT count(*) FROM segments_membership d"
            f" WHERE d.segment_id = segments_segment.id AND NOT {active_sql('d')}",
            [],
        ),
    )


class CappedPaginator(Paginator):
    """Counts at most CAP rows, so a list page never counts a whole big table.

    Past CAP rows the list shows "CAP+" and its last pages are out of reach: narrow it with a
    filter or a search (or export the segment's members as CSV).
    """

    CAP = 10_000
    capped = False

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: self.CAP + 1].count()
        self.capped = counted > self.CAP
        return min(counted, self.CAP)


def user_id_search(queryset: QuerySet, search_term: str, field: str, *, slug_field: str | None = None) -> QuerySet:
    """Exact, indexed search: digits match a user id (or a slug made of digits); else a slug; else nothing."""
    term = search_term.strip()
    if not term:
        return queryset
    if term.isascii() and term.isdigit() and len(term) <= 19:
        condition = {field: int(term)}
        if slug_field:
            return queryset.filter(Q(**condition) | Q(**{slug_field: term}))
        return queryset.filter(**condition)
    if slug_field:
        return queryset.filter(**{slug_field: term})
    return queryset.none()


class PeriodsQuerySet(QuerySet):
    """`datetimes()` without a DISTINCT over the whole table: the admin's date hierarchy asks
    for the years, months or days that hold rows; this lists every period from the first row
    to the last (two index lookups), so a period may be empty."""

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        if bounds["first"] is None:
            return []
        tz = tzinfo or timezone.get_current_timezone()
        first, last = (timezone.localtime(bounds[key], tz) for key in ("first", "last"))
        periods, current = [], _truncate(first, kind)
        while current <= last:
            periods.append(current)
            current = _next(current, kind)
        return periods if order == "ASC" else periods[::-1]


def _truncate(value: datetime, kind: str) -> datetime:
    value = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind in ("year", "month"):
        value = value.replace(day=1)
    if kind == "year":
        value = value.replace(month=1)
    return value


def _next(value: datetime, kind: str) -> datetime:
    if kind == "year":
        return value.replace(year=value.year + 1)
    if kind == "month":
        return value.replace(year=value.year + value.month // 12, month=value.month % 12 + 1)
    return value + timedelta(days=1)
