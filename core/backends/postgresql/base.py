"""PostgreSQL with django-prometheus's query metrics (`django_db_execute_total`, `…_errors_total`,
`…_query_duration_seconds`), added up in the process by core/telemetry.py's tally rather than written
to the metrics at every query as django-prometheus's own cursor does; its connection counts stay its own."""

import time

from django.db.backends.postgresql import base as django_base
from django_prometheus.db import errors_total, execute_many_total, execute_total, query_duration_seconds
from django_prometheus.db.backends.postgresql import base as prometheus_base

from core.telemetry import tally


def tallied_cursor(cursor_class: type, labels: tuple[str, str]) -> type:
    """`cursor_class` counting and timing its statements by (alias, vendor)."""

    class Cursor(cursor_class):
        def execute(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as exc:
                tally.count(errors_total, (*labels, type(exc).__name__))
                raise
            finally:
                tally.count(execute_total, labels)
                tally.observe(query_duration_seconds, labels, time.perf_counter() - started)

        def executemany(self, query, params_seq, *args, **kwargs):
            statements, started = len(params_seq), time.perf_counter()
            try:
                return super().executemany(query, params_seq, *args, **kwargs)
            except Exception as exc:
                tally.count(errors_total, (*labels, type(exc).__name__))
                raise
            finally:
                tally.count(execute_total, labels, statements)
                tally.count(execute_many_total, labels, statements)
                tally.observe(query_duration_seconds, labels, time.perf_counter() - started)

    return Cursor


class DatabaseWrapper(prometheus_base.DatabaseWrapper):
    def get_connection_params(self):
        params = django_base.DatabaseWrapper.get_connection_params(self)  # Django's, without django-prometheus's cursor
        params["cursor_factory"] = tallied_cursor(params["cursor_factory"], (self.alias, self.vendor))
        return params
