"""The harness's own arithmetic and parsing (the benchmark itself never runs in the test suite)."""

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.load import Target
from bench.markdown import END, START, Results, events_section, metrics_section, splice, webhooks_section
from bench.sql import HOT_SQL, pgbench_script
from bench.stats import median, ratio, table
from bench.tools import Load, parse_pgbench, parse_wrk
from segments.selectors import user_segment_slugs

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:18731
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    2.01ms  40.10ms   90.00%
  20000 requests in 10.00s, 3.00MB read
Requests/sec:   2000.00
BENCH_JSON {"requests": 20000, "duration_us": 10000000, "p50_us": 4500, "p99_us": 21000, "max_us": 40100, \
"connect": 0, "read": 2, "write": 0, "status": 3, "timeout": 1, "added": 7, "removed": 5}
"""

PGBENCH_OUTPUT = """transaction type: hot.sql
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
duration: 10 s
number of transactions actually processed: 250000
number of failed transactions: 0 (0.000%)
latency average = 0.640 ms
initial connection time = 12.345 ms
tps = 25012.345678 (without initial connection time)
"""


def test_parse_wrk__summary_line__rps_percentiles_and_errors():
    load = parse_wrk(WRK_OUTPUT)
    assert load.rps == 2000.0
    assert (load.p50_ms, load.p99_ms) == (4.5, 21.0)
    assert load.errors == 6
    assert (load.requests, load.added, load.removed) == (20000, 7, 5)


def test_parse_wrk__no_summary_line__value_error():
    with pytest.raises(ValueError, match="BENCH_JSON"):
        parse_wrk("Requests/sec: 10\n")


def test_parse_pgbench__output__tps_latency_and_failures():
    load = parse_pgbench(PGBENCH_OUTPUT)
    assert load.rps == pytest.approx(25012.345678)
    assert load.p50_ms == 0.64
    assert math.isnan(load.p99_ms)
    assert (load.errors, load.requests) == (0, 250000)


def test_parse_pgbench__garbage__value_error():
    with pytest.raises(ValueError, match="pgbench"):
        parse_pgbench("connection refused")


def test_ratio__per_round_then_median():
    # Round 2 ran on a slow moment for both: the per-round ratio stays 0.5 where a ratio of medians would not.
    assert ratio([100.0, 10.0, 120.0], [200.0, 20.0, 240.0]) == 0.5
    assert ratio([1.0, 3.0, 2.0], [1.0, 1.0, 1.0]) == 2.0


def test_ratio__unequal_rounds__value_error():
    with pytest.raises(ValueError):
        ratio([1.0, 2.0], [1.0])


def test_median__ignores_failed_runs():
    assert median([3.0, float("nan"), 1.0, 2.0]) == 2.0
    assert math.isnan(median([float("nan")]))


def test_table__markdown_rows():
    assert table(["a", "b"], [["x", 1234.5], ["y", float("nan")], ["z", 100132]]) == (
        "| a | b |\n|---|---|\n| x | 1,234 |\n| y | – |\n| z | 100,132 |"
    )


def test_pgbench_script__same_sql_as_the_hot_path_with_a_random_id():
    script = pgbench_script(1000)
    assert script.startswith("\\set uid random(1, 1000)\n")
    assert HOT_SQL.replace("%s", ":uid") in script


@pytest.mark.django_db
def test_hot_sql__same_as_the_selector():
    with CaptureQueriesContext(connection) as queries:
        user_segment_slugs(7)
    assert [query["sql"] for query in queries] == [HOT_SQL.replace("%s", "7")]


def test_splice__notes_around_the_markers__kept():
    first = splice("", "table 1")
    assert first == f"{START}\ntable 1\n{END}\n"
    edited = "# Title\n" + first + "Notes.\n"
    assert splice(edited, "table 2") == f"# Title\n{START}\ntable 2\n{END}\nNotes.\n"


def test_webhooks_section__events_per_second__per_round_then_median():
    data = {"received": [10_000, 20_000], "seconds": [1.0, 4.0], "messages": [10, 20], "events": [10_000, 20_000]}
    lines = webhooks_section(Results(args=None, sizes=None, command="", webhooks=data))
    assert "| 15,000 | 15 | 2.50 | 7,500 |" in "\n".join(lines)


def test_metrics_section__per_round_ratios_and_their_median():
    def target(*runs: tuple[float, float]) -> Target:
        loads = [Load(rps=rate, p50_ms=1, p99_ms=2, errors=0, requests=1, cpu_ms=cpu / 1000) for rate, cpu in runs]
        return Target("t", None, runs=loads)

    counted, off = target((990, 210), (500, 220), (1200, 205)), target((1000, 200), (400, 200), (1250, 200))
    text = "\n".join(metrics_section(Results(args=None, sizes=None, command="", metrics=[counted, off])))
    assert "| 1 | 990 | 1,000 | 0.99 | 210 | 200 |" in text
    assert "| 2 | 500 | 400 | 1.25 | 220 | 200 |" in text
    assert "rate as served ÷ metrics off 0.990 (counting costs 1.0% of the rate)" in text
    assert "as served ÷ metrics off 1.050 (210 against 200 µs, so at most 4.8% of the rate" in text


def test_events_section__with_over_without__per_round_then_median():
    def target(rates: list[float], cpu: list[float]) -> Target:
        runs = [
            Load(rps=r, p50_ms=1, p99_ms=2, errors=0, requests=1, cpu_ms=c) for r, c in zip(rates, cpu, strict=True)
        ]
        return Target("PATCH", None, runs=runs)

    nan = float("nan")
    events = {
        "with": [target([900.0, 1000.0, 800.0], [2.0, 2.5, 2.0]), target([5000.0] * 3, [nan] * 3)],
        "without": [target([1000.0, 1000.0, 1000.0], [1.8, 2.0, 2.0]), target([4000.0] * 3, [nan] * 3)],
    }
    text = "\n".join(events_section(Results(args=None, sizes=None, command="", events=events)))
    assert "| PATCH | 900, 1,000, 800 | 900 | 1,000, 1,000, 1,000 | 1,000 | 0.90 |" in text
    assert "| PATCH | 5,000, 5,000, 5,000 | 5,000 | 4,000, 4,000, 4,000 | 4,000 | 1.25 |" in text
    assert "| PATCH | 2.00 | 2.00 | 0.90 |" in text  # CPU: the median of 1.8/2.0, 2.0/2.5, 2.0/2.0
    assert text.count("| PATCH |") == 3  # no CPU row where none was measured
