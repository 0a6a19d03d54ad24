"""Production server config, used by `make run`/`make serve`, Docker, the live tests and the benchmarks.

uvicorn's worker (segmenter/web_worker.py: Python's asyncio loop and httptools) serving segmenter/asgi.py:
CPUs + 1 worker processes, each reading requests in its event loop and running the WSGI
application (the fast lane and Django) in a pool of GUNICORN_THREADS threads, one database
connection each. A slow client holds a socket, not a thread (README, Decisions). Measured by
`make bench` (docs/performance.md) against the gthread workers it replaced
(GUNICORN_WORKER_CLASS=gthread serves segmenter/wsgi.py with the same processes and threads).
Every setting can be overridden from the environment.
"""

import glob
import logging
import multiprocessing
import os
import tempfile

from environ import Env

from segmenter.log_format import JSON_FORMATTER

bind = os.environ.get("SERVE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "segmenter.web_worker.UvicornWorker")
ASGI_APP = "segmenter.asgi:application"
wsgi_app = ASGI_APP if "uvicorn" in worker_class.lower() else "segmenter.wsgi:application"
# Threads per worker: gthread's, or the ASGI entry's pool, which reads the variable in the worker.
threads = int(os.environ.setdefault("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# gunicorn's and uvicorn's own lines (start, workers booted and lost, signals, stop) are JSON objects as
# the app's are (segmenter/log_format.py), on stderr; uvicorn's worker hands its loggers gunicorn's
# handlers. Python's warnings are logged too rather than printed, so every line on stderr is JSON.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": JSON_FORMATTER},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},  # before Django sets up its own LOGGING
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"] if accesslog else [], "propagate": False},
    },
}
logging.captureWarnings(True)
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

# Imported once the folder is set (prometheus_client picks its storage at import), and here rather than in
# child_exit: an import inside the master's signal handling could crash the master while it stopped.
from prometheus_client import multiprocess  # noqa: E402


def _remove_metrics_files() -> None:
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def on_starting(server) -> None:
    named = getattr(server.app, "app_uri", ASGI_APP)
    if named != ASGI_APP and "uvicorn" in server.cfg.worker_class_str.lower():
        # `gunicorn segmenter.wsgi:application`, Django's way of serving a project: a WSGI application
        # needs a WSGI worker, so it is served by gthread (without the ASGI entry's slow-client guard).
        server.log.warning("%s is a WSGI application: serving it with gunicorn's gthread workers", named)
        server.cfg.set("worker_class", "gthread")
        server.worker_class = server.cfg.worker_class
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    _remove_metrics_files()


def child_exit(server, worker) -> None:
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    _remove_metrics_files()
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.basename(directory).startswith(METRICS_DIR_PREFIX):
        os.rmdir(directory)
