"""`manage.py import_members` as an operator runs it: a process of its own, with a real `manage.py worker` applying
the import (or none running), its progress bar on a real terminal (a pseudo-terminal)."""

import os
import pty
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import pytest
from django.conf import settings

from segments.models import HistoryEvent, Import, Membership
from segments.services import AddItem, memberships_update, segment_create
from users.services import users_register

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = "manage.py import_members"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


class Command:
    """`manage.py import_members ARGS` running; its standard error is a terminal when `tty`, read as it comes."""

    def __init__(self, *args: str, env: dict[str, str], stdin: bytes | None = None, tty: bool = False) -> None:
        self.chunks: list[bytes] = []
        reader, writer = pty.openpty() if tty else os.pipe()
        with tempfile.TemporaryFile() as given:
            given.write(stdin or b"")
            given.seek(0)
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "import_members", *args],
                cwd=settings.BASE_DIR,
                env=env,
                stdin=given,
                stdout=subprocess.PIPE,
                stderr=writer,
                # Ctrl-C is a SIGINT: a shell's background job (CI, say) starts with it ignored, and the child
                # would inherit that; a terminal's command has it.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        os.close(writer)
        self.thread = threading.Thread(target=self._read, args=(reader,), daemon=True)
        self.thread.start()

    def _read(self, reader: int) -> None:
        try:
            while chunk := os.read(reader, 4096):
                self.chunks.append(chunk)
        except OSError:  # a pseudo-terminal whose other end closed
            pass
        os.close(reader)

    @property
    def stderr(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait(self, timeout: float = 60) -> Run:
        stdout, _ = self.process.communicate(timeout=timeout)
        self.thread.join(timeout=5)
        return Run(self.process.returncode, stdout.decode(), self.stderr)


@pytest.fixture
def command_env(database_url):
    """The environment of the command: the test database, and the media root the worker reads files from."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SECRET_KEY": "x",
        "DJANGO_LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }


@pytest.fixture
def promo():
    users_register(user_ids=list(range(1, 3001)), actor="t")
    return segment_create(slug="PROMO", actor="t")


def members(slug: str = "PROMO") -> set[int]:
    return set(Membership.objects.filter(segment__slug=slug).values_list("user_id", flat=True))


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_import_members__csv_with_a_worker__progress_bar_then_counts(promo, start_worker, command_env, tmp_path):
    memberships_update(user_id=1, add=[AddItem(slug="PROMO")], remove=[], source="api", actor="t")
    path = tmp_path / "members.csv"
    path.write_text("user_id\n" + "".join(f"{i}\n" for i in range(1, 3001)) + "9999999\n")
    start_worker(SEGMENTER_IMPORT_CHUNK_LINES="500")

    run = Command("PROMO", str(path), env=command_env, tty=True).wait()

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == (
        f"import {Import.objects.get().pk} succeeded: 3001 of 3001 lines applied;"
        " 2999 added, 0 removed, 1 already members, 1 unknown users (first: 9999999)"
    )
    assert "succeeded: 100%" in run.stderr and "3001/3001" in run.stderr  # the bar, drawn on the terminal
    assert members() == set(range(1, 3001))
    assert HistoryEvent.objects.filter(source="import", actor=ACTOR, operation="added").count() == 2999


def test_import_members__json_remove_then_stdin_replace__applied_in_order(promo, start_worker, command_env, tmp_path):
    for user_id in (1, 2, 3, 4):
        memberships_update(user_id=user_id, add=[AddItem(slug="PROMO")], remove=[], source="api", actor="t")
    path = tmp_path / "gone.json"
    path.write_text('{"user_ids": [1, 2]}')
    start_worker()

    removed = Command("PROMO", str(path), "--mode", "remove", env=command_env).wait()
    replaced = Command(
        "PROMO", "-", "--mode", "replace", "--ttl-seconds", "3000000000", env=command_env, stdin=b"4\n5\n"
    ).wait()

    assert removed.returncode == replaced.returncode == 0, (removed.stderr, replaced.stderr)
    assert "2 removed" in removed.stdout.splitlines()[-1]
    assert "1 added, 1 removed, 1 already members" in replaced.stdout.splitlines()[-1]
    assert members() == {4, 5}
    assert Membership.objects.get(user_id=5).expires_at is not None  # the TTL of --ttl-seconds
    assert Membership.objects.get(user_id=4).expires_at is not None  # a listed member takes it too
    assert removed.stderr == ""  # no terminal: no progress bar


def test_import_members__invalid_lines__exits_1_with_the_lines_and_changes_nothing(
    promo, start_worker, command_env, tmp_path
):
    path = tmp_path / "members.csv"
    path.write_text("1\nfive\n3,yesterday\n")
    start_worker()

    run = Command("PROMO", str(path), env=command_env).wait()

    assert run.returncode == 1
    assert run.stdout.splitlines()[-1] == (
        f"import {Import.objects.get().pk} failed: no line applied;"
        " 0 added, 0 removed, 0 already members, 0 unknown users"
    )
    assert "2 invalid lines; nothing was changed." in run.stderr
    assert "line 2: invalid user id 'five'" in run.stderr
    assert "line 3: invalid expires_at 'yesterday'" in run.stderr
    assert members() == set()


def test_import_members__expiry_past_the_bound__exits_1_naming_the_line_and_changes_nothing(
    promo, start_worker, command_env, tmp_path
):
    path = tmp_path / "members.csv"
    path.write_text("1,2030-01-01T00:00:00Z\n2,9999-12-31T23:59:59-05:00\n")
    start_worker()

    run = Command("PROMO", str(path), env=command_env).wait()

    assert run.returncode == 1
    assert "line 2: expires_at '9999-12-31T23:59:59-05:00' must be before 9999-01-01T00:00:00Z" in run.stderr
    assert members() == set()


def test_import_members__no_worker__says_so_ctrl_c_stops_waiting_and_a_worker_applies_it_later(
    promo, start_worker, command_env
):
    command = Command("PROMO", "-", env=command_env, stdin=b"7\n8\n")
    assert wait_for(lambda: "waiting for a worker (manage.py worker)" in command.stderr, 30), command.stderr
    command.process.send_signal(signal.SIGINT)
    run = command.wait()

    assert run.returncode == 130
    assert f"stopped waiting; import {Import.objects.get().pk} goes on in the worker" in run.stderr
    assert Import.objects.get().status == Import.Status.QUEUED
    start_worker()
    assert wait_for(lambda: Import.objects.get().status == Import.Status.SUCCEEDED, 30)
    assert members() == {7, 8}


def test_import_members__no_wait__queued_and_exits_at_once(promo, command_env):
    run = Command("PROMO", "-", "--no-wait", env=command_env, stdin=b"7\n").wait()

    queued = Import.objects.get()
    assert run.returncode == 0
    assert run.stdout.strip() == f"import {queued.pk} of PROMO queued (add): GET /api/v1/imports/{queued.pk}/"
    assert (queued.status, queued.actor) == (Import.Status.QUEUED, ACTOR)
    assert (settings.MEDIA_ROOT / queued.file_name).read_bytes() == b"7\n"
