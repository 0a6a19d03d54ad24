"""Fixtures of the tests that run the whole service: real worker processes."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from segmenter.tests.live import database_url

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """A `manage.py worker` process; its JSON log lines are collected as they come."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
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
def start_worker(tmp_path):
    """Start worker processes on the test database; each is SIGKILLed at the end if still running."""
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(
            {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SECRET_KEY": "x", "MEDIA_ROOT": str(tmp_path), **env}
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.process.kill()
        worker.process.wait()
