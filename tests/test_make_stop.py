"""`make stop` stops what `make run` started (the web server and the worker of `make serve-all`), as a
newcomer uses it from a second terminal: everything gone within seconds, quietly."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


@pytest.mark.parametrize("stop", ["make stop", "Ctrl-C"])
def test_make_stop_or_ctrl_c__while_serve_all_runs__server_and_worker_stopped_quietly(
    database_url, free_port, tmp_path, stop
):
    url, port, pid_file = database_url(), free_port(), tmp_path / "serve.pid"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GUNICORN_", "MAKE"))},
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "test-only-secret-key-not-for-production",
        "SERVE_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "SERVE_PID": str(pid_file),
    }
    log = tmp_path / "serve-all.log"
    with log.open("wb") as out:
        running = subprocess.Popen(
            ["make", "--no-print-directory", "serve-all"], cwd=settings.BASE_DIR, env=env, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert running.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/health/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        shell = int(pid_file.read_text())
        children = [int(pid) for pid in Path(f"/proc/{shell}/task/{shell}/children").read_text().split()]
        assert len(children) == 2  # gunicorn's master and the worker

        started = time.monotonic()
        if stop == "make stop":  # from a second terminal
            command = ["make", "--no-print-directory", "stop"]
            stopped = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=60)
            assert stopped.returncode == 0, stopped.stderr
            assert running.wait(timeout=5) == 0
        else:  # the terminal sends SIGINT to every process of the foreground group: make, the shell, all servers
            os.killpg(running.pid, signal.SIGINT)
            running.wait(timeout=15)
        assert time.monotonic() - started < 15
        assert not any(_alive(pid) for pid in [shell, *children])
        assert not pid_file.exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/api/health/", timeout=2)
        with connection.cursor() as cursor:  # the database make run did not start (DATABASE_URL) still runs
            cursor.execute("SELECT 1")
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait()
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert [json.loads(line) for line in lines if '"ERROR"' in line or '"CRITICAL"' in line] == []
    assert "Traceback" not in log.read_text()
