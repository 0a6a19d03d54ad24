"""Private PostgreSQL clusters for tests that stop, pause or replicate a server: made with initdb (or
pg_basebackup from another one) in a temporary directory on a free port, never the shared server."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from django.conf import settings

from segmenter.tests.live import free_port, server_env


def _server_bin_dir() -> Path:
    """Where initdb and pg_ctl live: pg_config's bindir, else Debian's newest /usr/lib/postgresql/N/bin."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.insert(0, Path(bindir))
    return next(path for path in candidates if (path / "initdb").exists())


class PrivateCluster:
    """A throwaway PostgreSQL cluster owned by this test; stopping and starting it harms no one else."""

    def __init__(self) -> None:
        self.bin = _server_bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="segmenter-faults-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/segmenter"
        if os.geteuid() == 0:  # initdb refuses to run as root: run the cluster as the postgres user
            shutil.chown(self.dir, "postgres")

    def run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
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
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
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
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def connect(self):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="segmenter")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


def manage(*args: str, url: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=server_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


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
        self.port = free_port()
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
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            for path in (self.dir, *self.dir.iterdir()):
                shutil.chown(path, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
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
