"""Starting and stopping the servers under test: gunicorn (with gunicorn.conf.py) and granian."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_code = [ROOT]
BIN = Path(sys.executable).parent
APPS = {"service": "segmenter.wsgi:application", "bare": "bench.bare_app:application"}
SERVED = ""  # worker_class of the production server: gunicorn.conf.py's own worker and app (the ASGI entry)
GRANIAN_VERSION = "2.8.9"
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https"}
# The settings under test: the defaults, and the HTTPS settings of a deployment behind a TLS-terminating
# proxy (the Makefile's PRODUCTION_ENV). Every request carries `X-Forwarded-Proto: https` (common.lua).
SETTINGS_ENV = {
    "default": {
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_TRUSTED_PROXY": "true",
    },
    # What counting and logging every request costs the hot path: the same defaults without them.
    "metrics off": {
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_TRUSTED_PROXY": "true",
        "SEGMENTER_METRICS": "off",
    },
    "metrics and logs off": {
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_TRUSTED_PROXY": "true",
        "SEGMENTER_METRICS": "off",
        "DJANGO_LOG_LEVEL": "WARNING",
    },
    # What counting every write against SEGMENTER_WRITE_RATE costs (a rate never reached).
    "write rate": {
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_TRUSTED_PROXY": "true",
        "SEGMENTER_WRITE_RATE": "1000000000/min",
    },
    "production": {
        "DJANGO_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_SSL_REDIRECT": "true",
        "DJANGO_SECURE_COOKIES": "true",
        "DJANGO_TRUSTED_PROXY": "true",
    },
}


def code_dir() -> Path:
    """Where the code under test runs from: the snapshot taken at the start of the run, if any."""
    return _code[0]


def snapshot(directory: Path) -> Path:
    """Copy the project so that edits made in the working tree during a run do not change what is measured."""
    target = directory / "code"
    skip = shutil.ignore_patterns(".venv", ".git", "media", "staticfiles", ".postgres", "__pycache__")
    shutil.copytree(ROOT, target, ignore=skip)
    _code[0] = target
    return target


@dataclass(frozen=True)
class ServerConfig:
    """A server and its tuning; `name` is how the results tables call it."""

    name: str
    server: str  # gunicorn | granian
    workers: int
    worker_class: str = "gthread"  # gunicorn only; SERVED: as gunicorn.conf.py serves the service
    threads: int = 1
    keepalive: int = 5
    code: Path | None = None  # the code it serves: the run's snapshot unless given (bench.compare's baseline)

    @property
    def directory(self) -> Path:
        return self.code or code_dir()

    def command(self, app: str, port: int) -> tuple[list[str], dict[str, str]]:
        if self.server == "gunicorn":
            env = {
                "SERVE_BIND": f"127.0.0.1:{port}",
                "GUNICORN_BIND": f"127.0.0.1:{port}",  # its name in revisions before SERVE_BIND (bench.compare)
                "WEB_CONCURRENCY": str(self.workers),
                "GUNICORN_THREADS": str(self.threads),
                "GUNICORN_KEEPALIVE": str(self.keepalive),
            }
            command = [str(BIN / "gunicorn"), "-c", str(self.directory / "gunicorn.conf.py")]
            if self.worker_class == SERVED:
                return command, env
            return [*command, APPS[app]], {**env, "GUNICORN_WORKER_CLASS": self.worker_class}
        command = [
            str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(self.workers), "--blocking-threads", str(self.threads), "--no-ws",
            "--log-level", "warning", APPS[app],
        ]  # fmt: skip
        return command, {}


def granian_ensure() -> bool:
    """granian is only for the comparison: installed into the venv on first use, never a requirement."""
    if (BIN / "granian").exists():
        return True
    result = subprocess.run([str(BIN / "pip"), "install", "-q", f"granian=={GRANIAN_VERSION}"], check=False)
    return result.returncode == 0


class Server:
    """A running server in its own process group; a context manager that always stops it."""

    def __init__(self, config: ServerConfig, app: str, port: int, env: dict[str, str]) -> None:
        self.config, self.app, self.port = config, app, port
        command, server_env = config.command(app, port)
        self.log = open(ROOT / ".venv" / f"bench-{config.server}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, cwd=config.directory, env={**os.environ, **env, **server_env}, stdout=self.log, stderr=self.log,
            start_new_session=True,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.config.name} ({self.app}) exited at start; see {self.log.name}")
            try:
                probe = urllib.request.Request(self.url + "/api/v1/users/1/segments/", headers=FORWARDED_HTTPS)
                urllib.request.urlopen(probe, timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # any HTTP answer (401 without a token) means it is serving
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.config.name} ({self.app}) did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        self.stop()

    def pids(self) -> list[int]:
        """The server's processes (its process group: the master and its workers)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == self.process.pid:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
