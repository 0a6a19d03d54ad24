"""Production server config, used by `make run`, Docker and the benchmarks.

gthread workers with keep-alive: CPUs + 1 workers of 4 threads each. Measured by `make bench`
(docs/performance.md) against sync workers (which close the connection after every response)
and other gthread shapes on 2 CPUs; every setting can be overridden from the environment.
"""

import glob
import multiprocessing
import os
import tempfile

from environ import Env

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# X-Forwarded-Proto is believed only from a trusted proxy (DJANGO_TRUSTED_PROXY=true; docs/security.md),
# here as in Django's settings: otherwise any client could claim HTTPS.
_trusted_proxy = os.environ.get("DJANGO_TRUSTED_PROXY", "").strip().lower() in Env.BOOLEAN_TRUE_STRINGS
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1") if _trusted_proxy else ""

# Metrics from every worker process (prometheus_client's multiprocess mode): each worker writes its
# counters to files in this folder, which GET /metrics adds up. A folder of its own unless set; emptied
# at start; a worker's live files go when it exits, its counters stay so totals never go back.
METRICS_DIR_PREFIX = "segmenter-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)


def _remove_metrics_files() -> None:
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def on_starting(server) -> None:
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    _remove_metrics_files()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    _remove_metrics_files()
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.basename(directory).startswith(METRICS_DIR_PREFIX):
        os.rmdir(directory)
