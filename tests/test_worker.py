"""`manage.py worker`: every periodic job each round, until SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db(transaction=True)
def test_worker__rounds__expire_memberships_and_delete_expired_report_files(database_url, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    old, recent = reports / f"{'o' * 32}.csv", reports / f"{'r' * 32}.csv"
    for path, age_hours in ((old, 3), (recent, 1)):
        path.write_text("1;S;added;2023-08-01T00:00:00Z\n")
        written = time.time() - age_hours * 3600
        os.utime(path, (written, written))
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SECRET_KEY": "x",
        "MEDIA_ROOT": str(tmp_path),
        "SEGMENTER_REPORT_TTL_HOURS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "expire_memberships 0, purge_reports 1" in process.stdout.readline()
        assert not old.exists() and recent.exists()
        os.utime(recent, (time.time() - 7300, time.time() - 7300))  # now past the TTL too
        assert "purge_reports 1" in process.stdout.readline()
        assert not recent.exists()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
