"""The segment page's chart: members over time, from history, drawn as inline SVG on the server."""

from datetime import date, datetime, time, timedelta

from django.db.models import Case, IntegerField, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from segments.models import HistoryEvent, Membership, Segment

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 720, 200, 56, 24, 12


def members_by_day(segment: Segment, *, days: int = 90, today: date | None = None) -> list[tuple[date, int]]:
    """Members at the end of each of the last `days` days, today included.

    One grouped query over the window's history (index on segment_slug, at) gives the net change
    per day; the level comes from today's membership rows, since every membership row entered
    and leaves with a history event. So the cost grows with the window's events, not the segment's age.
    """
    today = today or timezone.now().date()
    start = today - timedelta(days=days - 1)
    net_by_day = dict(
        HistoryEvent.objects.filter(
            segment_slug=segment.slug, at__gte=datetime.combine(start, time.min, tzinfo=timezone.get_current_timezone())
        )
        .annotate(day=TruncDate("at"))
        .values("day")
        .annotate(net=Sum(Case(When(operation="added", then=Value(1)), default=Value(-1), output_field=IntegerField())))
        .values_list("day", "net")
    )
    level = Membership.objects.filter(segment=segment).count() - sum(net_by_day.values())
    series = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        level += net_by_day.get(day, 0)
        series.append((day, level))
    return series


def members_chart_svg(series: list[tuple[date, int]]) -> str:
    """A line chart of `series` as an SVG element (safe HTML)."""
    peak = max(level for _, level in series)
    top = max(peak, 1)
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(series) - 1, 1)

    def y(level: int) -> float:
        return PAD_TOP + plot_h * (1 - level / top)

    points = " ".join(f"{PAD_LEFT + i * step:.1f},{y(level):.1f}" for i, (_, level) in enumerate(series))
    gridlines = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>'
        '<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#666">{}</text>',
        ((PAD_LEFT, f"{y(v):.1f}", WIDTH - 8, f"{y(v):.1f}", PAD_LEFT - 6, f"{y(v) + 4:.1f}", v) for v in (0, top)),
    )
    first, last = series[0], series[-1]
    return format_html(
        '<svg class="members-chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" role="img" aria-label="{label}"><title>{label}</title>{grid}'
        '<polyline fill="none" stroke="#417690" stroke-width="2" points="{points}"/>'
        '<text x="{x0}" y="{yb}" font-size="11" fill="#666">{d0}</text>'
        '<text x="{x1}" y="{yb}" font-size="11" text-anchor="end" fill="#666">{d1}</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        label=f"Members per day from {first[0]} to {last[0]}: now {last[1]}, peak {peak}",
        grid=gridlines,
        points=points,
        x0=PAD_LEFT,
        x1=WIDTH - 8,
        yb=HEIGHT - 6,
        d0=first[0].isoformat(),
        d1=last[0].isoformat(),
    )
