"""A big import body through the production server: streamed to storage, never held in memory."""

import re
from pathlib import Path

import pytest
import requests

from core.auth import token_create
from segments.models import Import, Segment

LINE = b"1000000000001\n"
LINES = 7_000_000  # 98 MB
MEMORY_GROWTH_LIMIT = 40 * 1024 * 1024  # far below the body: it is not in memory


def _memory(pid: int, field: str) -> int:
    """VmRSS or VmHWM (peak) of a process, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


@pytest.fixture
def server(database_url, gunicorn, transactional_db, settings):
    with gunicorn(database_url(), workers=1, threads=2, MEDIA_ROOT=str(settings.MEDIA_ROOT)) as live:
        yield live


def test_import_upload__98_mb_csv__stored_whole_and_the_server_stays_small(server, settings, tmp_path):
    Segment.objects.create(slug="BIG")
    token = token_create(name="pipeline")[1]
    body = tmp_path / "big.csv"
    with body.open("wb") as file:
        for _ in range(LINES // 100_000):
            file.write(LINE * 100_000)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    (pid,) = server.worker_pids()
    requests.get(f"{server.base_url}/api/v1/segments/", headers=headers, timeout=10)  # everything imported
    before = _memory(pid, "VmRSS")

    with body.open("rb") as file:
        response = requests.post(
            f"{server.base_url}/api/v1/segments/BIG/imports/", data=file, headers=headers, timeout=120
        )

    assert response.status_code == 202, response.text
    stored = Import.objects.get(pk=response.json()["id"])
    stored_file = Path(settings.MEDIA_ROOT) / stored.file_name
    assert stored_file.stat().st_size == LINES * len(LINE)
    assert _memory(pid, "VmHWM") - before < MEMORY_GROWTH_LIMIT
