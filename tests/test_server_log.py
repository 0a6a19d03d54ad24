"""The production server's own log (gunicorn.conf.py): gunicorn's and uvicorn's lines are JSON objects like
the app's, so that every line on stderr parses."""

import json
import os
import signal
import time

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)


def test_server_lines__start_lost_worker_access_stop__every_line_one_json_object(database_url, gunicorn):
    with gunicorn(database_url(), workers=2, GUNICORN_ACCESSLOG="-") as server:
        assert requests.get(f"{server.base_url}/api/health/", timeout=10).status_code == 200
        lost = server.worker_pids()[0]
        os.kill(lost, signal.SIGKILL)  # the master logs the loss and boots another
        deadline = time.monotonic() + 60  # generous: a new worker imports Django on a shared, loaded machine
        while sum("Booting worker" in line for line in server.log_lines()) < 3:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        lines = server.log_lines()  # stdout and stderr both

    not_json = []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            not_json.append(line)
    assert not_json == []
    assert all({"level", "logger", "message", "time"} <= set(record) for record in records), records
    said = [(record["logger"], record["message"]) for record in records]
    for logger, start in [
        ("gunicorn.error", "Starting gunicorn"),
        ("gunicorn.error", "Booting worker with pid"),
        ("uvicorn.error", "Started server process"),
        ("gunicorn.error", f"Worker (pid:{lost}) was sent SIGKILL"),
        ("uvicorn.access", "127.0.0.1:"),
        ("gunicorn.error", "Shutting down: Master"),
    ]:
        assert any(name == logger and message.startswith(start) for name, message in said), (logger, start, said)
