"""Background jobs: each run logged as one JSON line; the task queue's worker (segmenter/tasks.py, events/tasks.py)."""

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


def jobs_run_once(jobs: dict[str, Callable[[], int]], *, report: Callable[[str], None]) -> None:
    """Run every job once, here and now (not on the queue); `report` gets one line with their counts."""
    report(", ".join(f"{job} {job_round(job, run)}" for job, run in jobs.items()))


def worker_run(*, concurrency: int) -> None:
    """Run the task queue's worker (every app's tasks.py, periodic jobs included) until SIGTERM or SIGINT.

    procrastinate's worker needs an asynchronous connection of its own (psycopg 3's), on the same database.
    """
    from procrastinate.contrib.django import app

    app.with_connector(app.connector.get_worker_connector()).run_worker(concurrency=concurrency)
