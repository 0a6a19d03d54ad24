"""Private PostgreSQL clusters for tests that stop, pause or replicate a server: made with initdb (or
pg_basebackup from another one) in a temporary directory on a free port, never the shared server."""

import os
import shutil
import subprocess
import sys
import tempfile
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
