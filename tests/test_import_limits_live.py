"""Hostile and careless import uploads through the production server: refused at once without freezing a
server process (its other requests go on), and never piling up on disk past the queue's cap."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from core.auth import token_create
from segments.models import Import, Segment
from segments.services.import_files import IMPORTS_DIR
from users.models import User

URL = "/api/v1/segments/BIG/imports/"
# A hot GET is answered in milliseconds; before the guard, a nested body held both server processes for
# their whole timeout (30 s here) and the GETs waited as long. 5 s leaves room for a loaded machine (the
# 20 MiB bodies are received on the same two cores) and still fails on a frozen process.
HOT_GET_BOUND = 5.0


@pytest.fixture
def token(transactional_db) -> str:
    Segment.objects.create(slug="BIG")
    User.objects.create(id=1)
    return token_create(name="pipeline")[1]


def _stored(settings) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / IMPORTS_DIR
    return sorted(folder.glob("*")) if folder.exists() else []


def _post(server, token: str, body: bytes, content_type: str = "application/json") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    return requests.post(f"{server.base_url}{URL}", data=body, headers=headers, timeout=60)


def test_import_upload__deep_nesting_and_huge_strings__refused_while_hot_reads_stay_fast(
    database_url, gunicorn, token, settings
):
    bodies = [
        b"[" * 70_000 + b"]" * 70_000,  # 140 KB: twice made both server processes time out
        b'{"user_ids": [' + b"[" * 70_000 + b"]" * 70_000 + b"]}",
        b'{"user_ids": ["' + b"a" * 20 * 1024 * 1024 + b'"]}',  # the parser held a 150 MiB one for a minute
    ] * 4
    with gunicorn(database_url(), workers=2, threads=4, MEDIA_ROOT=str(settings.MEDIA_ROOT)) as server:
        pids = server.worker_pids()
        hot = requests.Session()
        hot.headers["Authorization"] = f"Bearer {token}"
        assert hot.get(f"{server.base_url}/api/v1/users/1/segments/", timeout=10).status_code == 200
        done, latencies = threading.Event(), []

        def read_while_posting() -> None:
            while not done.is_set() or len(latencies) < 5:
                started = time.monotonic()
                response = hot.get(f"{server.base_url}/api/v1/users/1/segments/", timeout=10)
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
                time.sleep(0.02)

        with ThreadPoolExecutor(9) as pool:
            reader = pool.submit(read_while_posting)
            answers = list(pool.map(lambda body: _post(server, token, body), bodies))
            done.set()
            reader.result()
        log = server.log_tail()
        assert server.worker_pids() == pids, log  # no process timed out and was replaced

    assert [answer.status_code for answer in answers] == [400] * len(bodies)
    for answer in answers:
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["code"] == "validation_error"
    assert max(latencies) < HOT_GET_BOUND, sorted(latencies)[-3:]
    assert "WORKER TIMEOUT" not in log
    assert not Import.objects.exists() and _stored(settings) == []


def test_import_upload__past_the_queue_cap__503_with_retry_after_even_when_concurrent(
    database_url, gunicorn, token, settings
):
    body = b"1000000000001\n" * 30_000  # 420,000 bytes: two fit under a 1 MiB cap, a third does not
    env = {"SEGMENTER_IMPORT_MAX_MIB": "1", "SEGMENTER_IMPORT_QUEUE_MIB": "1"}
    with gunicorn(database_url(), workers=2, threads=4, MEDIA_ROOT=str(settings.MEDIA_ROOT), **env) as server:
        with ThreadPoolExecutor(8) as pool:  # no worker runs: every import accepted stays queued
            answers = list(pool.map(lambda _: _post(server, token, body, "text/csv"), range(8)))

    assert sorted(answer.status_code for answer in answers) == [202] * 2 + [503] * 6
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Content-Type"] == "application/problem+json"
            assert answer.json()["code"] == "import_queue_full" and int(answer.headers["Retry-After"]) > 0
    queued = Import.objects.all()
    assert [row.file_bytes for row in queued] == [len(body)] * 2
    assert sorted(path.name for path in _stored(settings)) == sorted(row.file_name.rsplit("/", 1)[1] for row in queued)
