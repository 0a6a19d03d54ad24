"""Starting and stopping the production server (gunicorn.conf.py) as an operator does: a stop by SIGTERM
(a service manager, compose) or SIGINT (Ctrl-C) is an ordinary event, logged at INFO, leaving no files;
`gunicorn segmenter.wsgi:application`, Django's way of serving a project, serves it."""

import json
import os
import signal
import time

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server__stopped_by_signal__exits_0_no_error_line_no_files_left(database_url, gunicorn, stop, tmp_path):
    metrics = tmp_path / "segmenter-metrics-stop"  # named as the folders the server makes and removes itself
    with gunicorn(database_url(), workers=3, PROMETHEUS_MULTIPROC_DIR=str(metrics)) as server:
        deadline = time.monotonic() + 60  # every worker serving, not only the first
        while sum("Application startup complete" in line for line in server.log_lines()) < 3:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.1)
        for _ in range(10):
            assert requests.get(f"{server.base_url}/api/health/", timeout=10).status_code == 200
        assert list(metrics.glob("*.db"))
        server.process.send_signal(stop)
        assert server.process.wait(timeout=30) == 0, server.log_tail()
        lines = server.log_lines()

    records = [json.loads(line) for line in lines]
    loud = [record for record in records if record["level"] not in ("DEBUG", "INFO")]
    assert loud == []
    messages = "\n".join(record["message"] for record in records)
    for never in ("was sent", "Error while closing socket", "Traceback", "mark_process_dead"):
        assert never not in messages
    assert "Shutting down: Master" in messages
    assert not os.path.exists(metrics)


def test_gunicorn__wsgi_application_named__served_by_gthread_with_one_warning(database_url, gunicorn, token):
    with gunicorn(database_url(), workers=1, command=("segmenter.wsgi:application",)) as server:
        headers = {"Authorization": f"Bearer {token}"}
        answer = requests.get(f"{server.base_url}/api/v1/users/1/segments/", headers=headers, timeout=10)
        lines = server.log_lines()
    assert answer.status_code in (200, 404), answer.text  # served by Django, not a 500 from the wrong worker
    warnings = [json.loads(line)["message"] for line in lines if '"WARNING"' in line]
    assert any("segmenter.wsgi:application is a WSGI application" in message for message in warnings), lines
