"""Request ids, request metrics and the one log line a request (or a worker's round) writes.

Django's RequestTelemetryMiddleware and the fast lane (segmenter/hot_path.py) both call these, so a
request is counted, timed and logged the same way whoever answers it. Counts and timings (the
requests' and, through core/backends/postgresql, the queries') are added up in the process by
`tally` and written to their prometheus_client metrics once a second (docs/performance.md).
"""

import atexit
import bisect
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from prometheus_client import Counter, Histogram

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept when it is 1-128 of these characters; anything else gets a new id.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ENVIRON_KEY = "segmenter.request_id"  # the id, once chosen, for whoever answers the request next
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others count as "other"
UNMATCHED = "unmatched"  # the route of a request no URL pattern matched (404s, static files)

REQUESTS = Counter(
    "segmenter_http_requests_total",
    "Requests answered, by route (URL name), method and status.",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "segmenter_http_request_duration_seconds",
    "Seconds from a request's arrival in the app to its response, by route (URL name) and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

FLUSH_SECONDS = 1.0


class Tally:
    """Counter increments and histogram observations added up in this process, and written to their
    prometheus_client metrics by `flush`: every FLUSH_SECONDS from a thread of the process's own, when
    /metrics is read and at exit. Under gunicorn every write to a metric is a locked write to a
    memory-mapped file (multiprocess mode); here a request costs a few operations on a dict instead.
    A process killed outright loses at most its last FLUSH_SECONDS of counts."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked child counts its own, from zero
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple, float] = {}  # (counter, label values) -> amount
        self._observed: dict[tuple, list] = {}  # (histogram, label values) -> [sum, count by bucket…]
        self._thread: threading.Thread | None = None

    def count(self, counter: Counter, labels: tuple, amount: float = 1) -> None:
        key = (counter, labels)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount
            self._started()

    def observe(self, histogram: Histogram, labels: tuple, value: float) -> None:
        bucket = bisect.bisect_left(histogram._upper_bounds, value)  # the first bound >= value, as observe() finds
        key = (histogram, labels)
        with self._lock:
            entry = self._observed.get(key)
            if entry is None:
                entry = self._observed[key] = [0.0] + [0] * len(histogram._upper_bounds)
            entry[0] += value
            entry[1 + bucket] += 1
            self._started()

    def _started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._flush_forever, name="metrics-tally", daemon=True)
            self._thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Write what was added up since the last flush to the metrics."""
        with self._lock:
            counts, self._counts = self._counts, {}
            observed, self._observed = self._observed, {}
        for (counter, labels), amount in counts.items():
            counter.labels(*labels).inc(amount)
        for (histogram, labels), (total, *buckets) in observed.items():
            child = histogram.labels(*labels)  # prometheus_client 0.26's histogram: a sum and a count per bucket
            child._sum.inc(total)
            for bucket, number in enumerate(buckets):
                if number:
                    child._buckets[bucket].inc(number)


tally = Tally()
current_id: ContextVar[str | None] = ContextVar("request_id", default=None)
logger = logging.getLogger("segmenter.requests")
jobs_logger = logging.getLogger("segmenter.jobs")


def new_id() -> str:
    return uuid.uuid4().hex


def request_id(environ: dict) -> str:
    """The request's id: the one already chosen for it, else the client's when well formed, else a new one."""
    chosen = environ.get(ENVIRON_KEY)
    if chosen is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        chosen = environ[ENVIRON_KEY] = given if WELL_FORMED_ID.fullmatch(given) else new_id()
    return chosen


@contextmanager
def bound_id(value: str) -> Iterator[str]:
    """Every log line written inside the block carries `request_id` = value."""
    token = current_id.set(value)
    try:
        yield value
    finally:
        current_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds the id of the request (or worker round) being handled to each log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = current_id.get()
        if value is not None and not hasattr(record, "request_id"):
            record.request_id = value
        return True


def request_done(*, route: str, method: str, status: int, started: float, path: str) -> None:
    """Count and time an answered request (unless SEGMENTER_METRICS=off) and log its line."""
    seconds = time.perf_counter() - started
    if method not in METHODS:
        method = "other"
    if settings.SEGMENTER_METRICS:
        tally.count(REQUESTS, (route, method, str(status)))
        tally.observe(DURATION, (route, method), seconds)
    if logger.isEnabledFor(logging.INFO):
        fields = {"route": route, "method": method, "status": status, "duration_ms": round(seconds * 1000, 3)}
        logger.info("%s %s %s", method, route, status, extra={**fields, "path": path[:200]})


def round_done(*, job: str, status: str, started: float, **counts: int) -> None:
    """Log a worker round's line, with the same fields as a request's where they apply: at INFO when it failed
    or changed something, at DEBUG when it ran and changed nothing (an idle worker's rounds, many a second;
    core/jobs.py logs a summary of them at INFO every JOBS_SUMMARY_SECONDS)."""
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    level = logging.DEBUG if status == "ok" and not any(counts.values()) else logging.INFO
    fields = {"job": job, "status": status, "duration_ms": duration_ms, **counts}
    jobs_logger.log(level, "%s %s", job, status, extra=fields)
