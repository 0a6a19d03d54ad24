"""`make run`'s credentials: quickstart saves them, show_credentials shows them once the server and the worker are
up, after their start-up lines, so they do not scroll away."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db(transaction=True)


def manage(*args: str, env: dict[str, str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, **options
    )


def test_show_credentials__after_the_server_answers_and_the_worker_swept__then_how_to_find_them_again(
    gunicorn, start_worker, database_url, tmp_path
):
    saved = tmp_path / ".quickstart"
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SECRET_KEY": "x"}
    made = manage("quickstart", "--save", str(saved), env=env, check=True, timeout=120)
    assert made.stdout == ""  # nothing shown before the server's and the worker's lines
    credentials = saved.read_text()
    assert "user 'admin', password '" in credentials and "Authorization: Bearer sgm_" in credentials
    assert saved.stat().st_mode & 0o777 == 0o600
    manage("quickstart", "--save", str(saved), env=env, check=True, timeout=120)  # a second `make run`
    assert saved.read_text() == credentials  # still the secrets it made, not "reset a password with"

    with gunicorn(database_url()) as server:
        shower = subprocess.Popen(
            [sys.executable, "manage.py", "show_credentials", str(saved), "--url", server.base_url],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert shower.poll() is None  # the server answers, but no worker runs yet
            worker = start_worker()
            out, _ = shower.communicate(timeout=60)
        finally:
            shower.kill()
        assert shower.returncode == 0
    assert credentials in out
    assert "Lost them? `cat " in out and "manage.py create_api_token NAME" in out
    assert worker.stop() == 0


def test_show_credentials__no_file__one_line_saying_how_to_make_it(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SECRET_KEY": "x"}
    started = time.monotonic()
    result = manage("show_credentials", str(tmp_path / "missing"), env=env, timeout=60)
    assert result.returncode != 0 and time.monotonic() - started < 30
    assert "quickstart --save" in result.stderr.strip().splitlines()[-1]
