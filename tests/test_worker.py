"""`manage.py worker`: the task queue's worker runs the periodic jobs until SIGTERM."""

import os
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from events.services.log import events_sequence
from events.services.webhooks import webhook_create
from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, memberships_update, segment_create
from users.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_worker__membership_expires__ttl_history_within_2s_of_expiry(start_worker):
    """The sweep runs every second, so a membership is gone within 2 s of its expiry, and its `ttl` event
    is at its `expires_at` exactly. The lateness is the database's: each poll reads its clock and whether
    the row is there in one statement, so only a row seen still there past the bound fails the test, however
    late this process polls. The bound is the 2 s promised plus 2 s for a worker slowed down on a loaded
    machine: far below the 60 s of a sweep that ran once a minute."""
    User.objects.create(id=1)
    segment = Segment.objects.create(slug="S")
    worker = start_worker()
    assert wait_for(lambda: worker.jobs("expire_memberships"), 20)  # the worker is up
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() + interval '1.5 seconds'")
        expires_at = cursor.fetchone()[0]
    membership = Membership.objects.create(user_id=1, segment=segment, expires_at=expires_at)
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT now(), EXISTS (SELECT FROM segments_membership WHERE id = %s)", [membership.pk])
            checked_at, present = cursor.fetchone()
        if not present:
            break
        assert checked_at - expires_at < timedelta(seconds=4), "still a member 4 s after its expiry"
        time.sleep(0.05)
    assert HistoryEvent.objects.get(source="ttl").at == expires_at
    assert worker.stop() == 0


def test_worker__report_files__older_than_the_ttl_deleted(start_worker, settings):
    reports = settings.MEDIA_ROOT / "reports"
    reports.mkdir(parents=True)
    old, recent = reports / f"{'o' * 32}.csv", reports / f"{'r' * 32}.csv"
    for path, age_hours in ((old, 3), (recent, 1)):
        path.write_text("1;S;added;2023-08-01T00:00:00Z\n")
        written = time.time() - age_hours * 3600
        os.utime(path, (written, written))
    worker = start_worker(SEGMENTER_REPORT_TTL_HOURS="2")
    # The first purge's log line comes after its deletions: no race with the file checks; the bound
    # covers the worker's start on a loaded machine.
    assert wait_for(lambda: worker.jobs("purge_reports"), 60), worker.lines
    assert worker.jobs("purge_reports")[0]["count"] == 1
    assert not old.exists()
    assert recent.exists()
    assert worker.stop() == 0


def test_worker__through_pgbouncer_in_transaction_mode__sweeps_numbers_and_delivers(
    start_worker, pgbouncer, pooled_env, receiver, settings
):
    """Every connection of the worker (Django's and the task queue's) goes through a transaction-mode
    pooler with two server connections. The task queue's LISTEN does not pass such a pooler, so the
    worker finds its jobs by polling (every 0.5 s): every job still runs."""
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True
    db = settings.DATABASES["default"]
    bouncer = pgbouncer(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432), pool_size=2)
    try:
        webhook_create(url=receiver.url)
        User.objects.create(id=1)
        segment_create(slug="S", actor="t")
        memberships_update(user_id=1, add=[AddItem(slug="S", ttl_seconds=2)], remove=[], source="api", actor="t")
        worker = start_worker(
            DATABASE_URL=bouncer.url(db["NAME"]), SEGMENTER_WEBHOOK_ALLOW_PRIVATE="true", **pooled_env
        )
        assert wait_for(lambda: len(receiver.events()) >= 3, 30), worker.lines[-20:]
        assert [(event["type"], event.get("source")) for event in receiver.events()] == [
            ("segment.created", None), ("membership.added", "api"), ("membership.removed", "ttl")
        ]  # fmt: skip
        ran = ("purge_events", "purge_messages", "history_partitions")
        assert wait_for(lambda: all(worker.jobs(job) for job in ran), 30)
        assert worker.stop() == 0
    finally:
        bouncer.stop()
    assert [line for line in worker.lines if line.get("level") in ("ERROR", "CRITICAL")] == []
    assert {line["status"] for line in worker.lines if "job" in line} == {"ok"}


def test_worker__postgresql_down_at_start_and_restarted__same_process_goes_on_and_stops_on_sigterm(
    cluster, start_worker
):
    """procrastinate's worker stops by itself when its database goes away; `manage.py worker` starts it
    again (core/jobs.py), so neither a database still starting nor a restart ends the process."""

    def logged(text: str) -> int:
        return sum(text in line.get("message", "") for line in worker.lines)

    cluster.stop("fast")
    worker = start_worker(DATABASE_URL=cluster.url)
    assert wait_for(lambda: logged("error connecting"), 30), worker.lines[-5:]  # it tried while the database was down
    assert worker.process.poll() is None
    cluster.start()
    assert wait_for(lambda: worker.jobs("expire_memberships"), 60), worker.lines[-5:]

    time.sleep(8)  # running as usual: the deferrer's connection in use (it was left closed after the restart)
    cluster.stop("fast")
    time.sleep(2)
    before = len(worker.jobs("expire_memberships"))
    cluster.start()
    assert wait_for(lambda: len(worker.jobs("expire_memberships")) >= before + 3, 60), worker.lines[-5:]
    assert worker.process.poll() is None and logged("starting again") >= 1
    assert worker.stop() == 0


def test_worker__two_workers__each_tick_runs_once(start_worker):
    first, second = start_worker(), start_worker()
    assert wait_for(lambda: len(first.jobs("expire_memberships") + second.jobs("expire_memberships")) >= 6, 30)
    assert first.stop() == 0 and second.stop() == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT defer_timestamp) FROM procrastinate_periodic_defers"
            " WHERE periodic_id = 'expire_memberships'"
        )
        defers, ticks = cursor.fetchone()
    assert defers == ticks > 0


@pytest.mark.django_db(transaction=False)
def test_worker__periodic_schedules__fire_at_even_intervals_all_hour():
    """A cron's seconds are its 6th field: "*/5 * * * * *" would fire every second of one minute in five."""
    from procrastinate.contrib.django import app

    for task in app.periodic_registry.periodic_tasks.values():
        ticks = task.croniter  # procrastinate's own parse of the schedule
        times = [ticks.get_next(float) for _ in range(3601)]
        gaps = {later - earlier for earlier, later in zip(times, times[1:], strict=False)}
        assert len(gaps) == 1, (task.periodic_id, task.cron, sorted(gaps)[:3])


def test_worker__idle_at_info__no_line_per_round_and_a_periodic_summary(start_worker):
    """An idle worker's rounds (the sweep every second, `count: 0`) are not logged at INFO, so `make run`'s
    output stays readable; what ran and changed comes as one summary line every SEGMENTER_JOBS_SUMMARY_SECONDS.
    A round that changes something is still logged at INFO."""
    User.objects.create(id=1)
    segment = Segment.objects.create(slug="S")
    events_sequence()  # the segment's event: numbered before, so that every round of the worker changes nothing
    worker = start_worker(SEGMENTER_JOBS_LOG_LEVEL="INFO", SEGMENTER_JOBS_SUMMARY_SECONDS="2")

    def summaries() -> list[dict]:
        return [line for line in worker.lines if "jobs" in line]

    assert wait_for(lambda: len(summaries()) >= 2, 30), worker.lines[-5:]  # several seconds of idle rounds
    assert worker.jobs("expire_memberships") == []
    assert [line for line in worker.lines if "job" in line] == []
    summary = summaries()[-1]
    assert summary["level"] == "INFO" and summary["jobs"]["expire_memberships"]["runs"] >= 1
    assert summary["jobs"]["expire_memberships"]["changed"] == 0

    Membership.objects.create(user_id=1, segment=segment, expires_at=timezone.now())
    assert wait_for(lambda: worker.jobs("expire_memberships"), 20), worker.lines[-5:]
    assert worker.jobs("expire_memberships")[0]["count"] == 1
    assert wait_for(lambda: any(line["jobs"].get("expire_memberships", {}).get("changed") for line in summaries()), 20)
    assert worker.stop() == 0
