"""GET /metrics: Prometheus text format, any token (read-only is enough).

The request and database metrics are counted by every server worker process; under gunicorn
each writes them to files in PROMETHEUS_MULTIPROC_DIR (set up by gunicorn.conf.py) once a second
(core/telemetry.py's tally) and this view adds up the files of all of them. The domain gauges are
read at each scrape from PostgreSQL's statistics, for webhooks from the event log's positions and
indexes, and for imports from the partial index of unfinished ones: never a count of a whole table.
"""

import logging
import os

from django.db import DatabaseError, connection
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from rest_framework.views import APIView

from core import telemetry
from events.services.received import webhooks_backlog
from segments.tasks import EXPIRY_SWEEP

logger = logging.getLogger(__name__)

# n_live_tup is kept by PostgreSQL on every commit (within about a second); ANALYZE replaces it with
# its estimate. Memberships that expired but wait for the sweep are rows too.
GAUGES_SQL = """
SELECT
  (SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = 'segments_membership'::regclass),
  (SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = 'segments_segment'::regclass),
  (SELECT extract(epoch FROM now() - finished_at)::float FROM segmenter_jobrun WHERE name = %s),
  (SELECT count(*) FROM segments_import WHERE status = 'queued'),
  (SELECT count(*) FROM segments_import WHERE status = 'running'),
  (SELECT greatest(extract(epoch FROM statement_timestamp() - min(created_at))::float, 0)
     FROM segments_import WHERE status IN ('queued', 'running'))
"""
GAUGES = (
    ("segmenter_memberships", "Memberships, active or waiting for the sweep, from PostgreSQL's statistics."),
    ("segmenter_segments", "Segments, from PostgreSQL's statistics."),
    ("segmenter_expiry_sweep_age_seconds", "Seconds since the last full expiry sweep finished (absent: never)."),
    ("segmenter_imports_queued", "Imports waiting for a worker (read from a partial index of unfinished imports)."),
    ("segmenter_imports_running", "Imports a worker is checking or applying."),
    (
        "segmenter_import_oldest_unfinished_age_seconds",
        "Seconds since the oldest unfinished import was created; 0 when none.",
    ),
)


WEBHOOK_BACKLOG = (
    "segmenter_webhook_backlog_events",
    "Events of the log past the last one the webhook has received (enabled or disabled), by webhook id;"
    " events its filters leave out count until it passes them, events not yet numbered do not.",
)
WEBHOOK_AGE = (
    "segmenter_webhook_oldest_undelivered_age_seconds",
    "Seconds since the oldest event the webhook has not received (numbered or not) happened; 0 when none.",
)


class DatabaseGauges:
    """The domain gauges, read when scraped (two queries)."""

    def describe(self) -> list:
        return []  # nothing to check at registration: collect() needs the database

    def collect(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute(GAUGES_SQL, [EXPIRY_SWEEP])
                values = cursor.fetchone()
            webhooks = webhooks_backlog()
        except DatabaseError as exc:
            logger.warning("metrics: the domain gauges are left out: %s", type(exc).__name__)
            return
        for (name, documentation), value in zip(GAUGES, values, strict=True):
            if value is not None:
                yield GaugeMetricFamily(name, documentation, value=value)
        backlog = GaugeMetricFamily(*WEBHOOK_BACKLOG, labels=["webhook"])
        age = GaugeMetricFamily(*WEBHOOK_AGE, labels=["webhook"])
        for webhook_id, events, seconds in webhooks:
            backlog.add_metric([str(webhook_id)], events)
            age.add_metric([str(webhook_id)], seconds)
        yield backlog
        yield age


_database = CollectorRegistry()
_database.register(DatabaseGauges())


def metrics_text() -> bytes:
    telemetry.tally.flush()  # this process's counts at once; the other processes' are at most a second old
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:  # one process (manage.py runserver, tests): its own metrics are all there is
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_database)


@extend_schema(exclude=True)  # for Prometheus, not for API clients
class MetricsView(APIView):
    def get(self, request):
        return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
