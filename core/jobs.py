"""Periodic jobs: run each in rounds until SIGTERM or SIGINT, every round logged as one JSON line."""

import signal
import threading
import time
from collections.abc import Callable

from django.db import connection

from core import telemetry
from core.db import CLOCK

EXPIRY_SWEEP = "expire_memberships"  # the job whose last run /metrics reports


def job_round(job: str, run: Callable[[], int]) -> int:
    """Run one job once under its own id (as a request has one) and log its line with the count it returns."""
    started = time.perf_counter()
    with telemetry.bound_id(telemetry.new_id()):
        try:
            count = run()
        except Exception:
            telemetry.round_done(job=job, status="error", started=started)
            raise
        job_run_record(name=job)
        telemetry.round_done(job=job, status="ok", started=started, count=count)
    return count


def job_run_record(*, name: str) -> None:
    """Note that the job `name` finished a run now (the database's clock); one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO segmenter_jobrun (name, finished_at) VALUES (%s, {CLOCK})"
            " ON CONFLICT (name) DO UPDATE SET finished_at = excluded.finished_at",
            [name],
        )


def jobs_run(jobs: dict[str, Callable[[], int]], *, loop: bool, interval: float, report: Callable[[str], None]) -> None:
    """Run every job once, or with `loop` every `interval` seconds until a signal; `report` gets a line a round."""
    stop = threading.Event()
    if loop:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    while True:
        report(", ".join(f"{job} {job_round(job, run)}" for job, run in jobs.items()))
        if not loop or stop.wait(interval):
            break
    if loop:
        report("stopped")
