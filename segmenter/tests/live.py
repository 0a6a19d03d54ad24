"""A real gunicorn serving the app on a free port of 127.0.0.1, for tests that need processes and sockets."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings

GUNICORN = Path(sys.executable).parent / "gunicorn"
REQUEST_TIMEOUT = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str | None = None, port: int | None = None) -> str:
    """A DATABASE_URL for the database pytest-django made (or another one on another port)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    if host.startswith("/") and port is None:  # a Unix socket folder (the embedded server)
        return f"postgres://{user}{password}@/{host}/{name or db['NAME']}"
    return f"postgres://{user}{password}@{host}:{port or db.get('PORT') or 5432}/{name or db['NAME']}"


def server_env(url: str, **extra: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GUNICORN_"))}
    return {
        **clean,
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_LOG_LEVEL": "ERROR",
        "SEGMENTER_AUTH": "on",
        **extra,
    }


@contextmanager
def gunicorn(url: str, workers: int = 4, threads: int = 4, **extra_env: str) -> Iterator["Server"]:
    """Run gunicorn as gunicorn.conf.py sets it up (the production server) until the block ends; yields once
    /api/health/ answers 200."""
    port = free_port()
    env = server_env(
        url,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(workers),
        GUNICORN_THREADS=str(threads),
        GUNICORN_TIMEOUT="30",
        **extra_env,
    )
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        server.wait_healthy(timeout=30)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen, log) -> None:
        self.base_url = base_url
        self.process = process
        self.log = log
        self.statuses: Counter = Counter()
        self._lock = threading.Lock()

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until /api/health/ answered 200; fails after `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.log_tail()}")
            try:
                if requests.get(f"{self.base_url}/api/health/", timeout=2).status_code == 200:
                    return time.monotonic() - start
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server was not healthy within {timeout} s")

    def session(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def call(self, session: requests.Session, method: str, path: str, body=None) -> requests.Response:
        """One request; its status is counted (a connection error counts as status 0 and is raised)."""
        try:
            response = session.request(method, f"{self.base_url}{path}", json=body, timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            with self._lock:
                self.statuses[0] += 1
            raise
        with self._lock:
            self.statuses[response.status_code] += 1
        return response

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def log_lines(self) -> list[str]:
        """Everything the server wrote so far, line by line (the file's offset stays at its end)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace").splitlines()

    @property
    def requests_made(self) -> int:
        return sum(self.statuses.values())

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]
