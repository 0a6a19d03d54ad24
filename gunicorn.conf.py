"""Production server config, used by `make run`/`make serve`, Docker, the live tests and the benchmarks.

uvicorn's worker (`uvicorn_worker.UvicornWorker`, uvloop and httptools) serving segmenter/asgi.py:
CPUs + 1 worker processes, each reading requests in its event loop and running the WSGI
application (the fast lane and Django) in a pool of GUNICORN_THREADS threads, one database
connection each. A slow client holds a socket, not a thread (README, Decisions). Measured by
`make bench` (docs/performance.md) against the gthread workers it replaced
(GUNICORN_WORKER_CLASS=gthread serves segmenter/wsgi.py with the same processes and threads).
Every setting can be overridden from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
wsgi_app = "segmenter.asgi:application" if "uvicorn" in worker_class.lower() else "segmenter.wsgi:application"
# Threads per worker: gthread's, or the ASGI entry's pool, which reads the variable in the worker.
threads = int(os.environ.setdefault("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
