import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from segments.management.commands.import_members import _summary
from segments.models import HistoryEvent, Import, Membership, Segment
from segments.services import import_run
from users.services import users_seed

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_rollout__dry_run_then_apply__prints_counts(capsys):
    users_seed(count=1000, start=1000, actor="t")
    Segment.objects.create(slug="AVITO_VOICE_MESSAGES")
    call_command("rollout", "AVITO_VOICE_MESSAGES", "10", "--dry-run")
    assert "would add" in capsys.readouterr().out and not Membership.objects.exists()
    call_command("rollout", "AVITO_VOICE_MESSAGES", "10")
    added = Membership.objects.count()
    assert f"added {added}, removed 0" in capsys.readouterr().out
    assert HistoryEvent.objects.filter(source="rollout", actor="manage.py rollout").count() == added


@pytest.mark.parametrize("args", [["NOPE", "10"], ["S", "abc"], ["S", "101"], ["S", "1.234"], ["S", "NaN"]])
def test_rollout__bad_arguments__command_error(args):
    Segment.objects.create(slug="S")
    with pytest.raises(CommandError):
        call_command("rollout", *args)


def test_expire_memberships__once__sweeps_and_reports(capsys):
    users_seed(count=3, start=1, actor="t")
    segment = Segment.objects.create(slug="S")
    Membership.objects.create(user_id=1, segment=segment, expires_at=timezone.now() - timedelta(seconds=1))
    Membership.objects.create(user_id=2, segment=segment, expires_at=timezone.now() + timedelta(days=1))
    call_command("expire_memberships")
    assert "expire_memberships 1" in capsys.readouterr().out
    assert list(Membership.objects.values_list("user_id", flat=True)) == [2]


@pytest.mark.django_db(transaction=True)
def test_expire_memberships__loop__runs_the_worker_until_sigterm(database_url):
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SECRET_KEY": "x", "SEGMENTER_JOBS_LOG_LEVEL": "DEBUG"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "expire_memberships", "--loop"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:
            if '"job": "expire_memberships"' in line:
                break
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("slug", "name", "body", "options", "message"),
    [
        ("NOPE", "ids.csv", b"1\n", [], "Unknown segments: NOPE"),
        ("S", None, b"", [], "cannot read .*missing.csv: No such file"),
        ("S", "ids.json", b'{"user_ids": [1,', [], "JSON parse error"),
        ("S", "ids.json", b'{"ids": [1]}', [], "ids: Unknown field; did you mean `user_ids`?"),
        ("S", "ids.csv", b"1\n2\n3\n", [], "at most 2 lines"),
        ("S", "ids.csv", b"1\n", ["--ttl-seconds", "0"], "--ttl-seconds must be from 1 to 3162240000"),
        ("S", "ids.csv", b"1\n", ["--mode", "remove", "--register"], "--register goes with --mode add or replace"),
    ],
)
def test_import_members__refused_input__command_error_and_nothing_stored(
    slug, name, body, options, message, tmp_path, settings, monkeypatch
):
    monkeypatch.setattr("segments.services.import_files.MAX_LINES", 2)
    Segment.objects.create(slug="S")
    path = tmp_path / (name or "missing.csv")
    if name:
        path.write_bytes(body)
    with pytest.raises(CommandError, match=message):
        call_command("import_members", slug, str(path), *options)
    assert not Import.objects.exists()
    assert not any((settings.MEDIA_ROOT / "imports").glob("*"))


def test_import_members__register__queued_with_register_and_the_summary_counts_them(tmp_path):
    Segment.objects.create(slug="S")
    path = tmp_path / "ids.csv"
    path.write_bytes(b"424242\n")
    call_command("import_members", "S", str(path), "--register", "--no-wait")
    queued = Import.objects.get()
    assert queued.register is True

    done = import_run(queued.pk)

    assert (done.registered, done.added) == (1, 1)
    assert _summary(done).endswith("0 unknown users, 1 registered")
