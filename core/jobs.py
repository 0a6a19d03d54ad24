"""Background jobs: each run logged as one JSON line; periodic jobs declared once (each app's tasks.py); the task
queue's worker."""

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, connections

from core import telemetry
from core.db import CLOCK

JOBS_QUEUE = "default"  # periodic jobs and any job queued without a queue: `--concurrency` slots
RESTART_DELAYS = (1, 2, 5, 10, 30)  # seconds before the worker starts again, growing with stops in a row
RESTART_RESET_SECONDS = 10  # a worker that ran this long before it stopped starts again after the first delay

logger = logging.getLogger(__name__)

# The periodic jobs declared by periodic_job, by name: `manage.py worker --once` runs them all.
PERIODIC_JOBS: dict[str, Callable[[], int]] = {}
# The queues whose jobs have slots of their own, declared by queue_declare: {queue: its number of slots}.
QUEUES: dict[str, Callable[[], int]] = {}


def periodic_job(name: str, run: Callable[[], int], *, cron: str):
    """Declare the periodic job `name`: `run` (returning how many rows or files it changed) on the task queue
    at each tick of `cron` (seconds are its 6th field), through job_round; returns its task.

    Each tick is deferred once whichever number of workers run (procrastinate records the tick), queued at
    most once (`queueing_lock`) and run by one worker at a time (`lock`); `manage.py worker --once` runs
    every job declared here, once.
    """
    from procrastinate.contrib.django import app

    def task(timestamp: int) -> int:
        return job_round(name, run)

    PERIODIC_JOBS[name] = run
    return app.periodic(cron=cron, periodic_id=name)(app.task(name=name, queueing_lock=name, lock=name)(task))


def queue_declare(name: str, *, slots: Callable[[], int]) -> str:
    """Give the jobs of queue `name` slots of their own in every worker, `slots()` of them (read as the worker
    starts), so that however long they wait they never hold up the jobs of other queues; returns the name."""
    QUEUES[name] = slots
    return name


def job_round(job: str, run: Callable[[], int]) -> int:
    """Run one job once under its own id (as a request has one) and log its line with the count it returns."""
    started = time.perf_counter()
    with telemetry.bound_id(telemetry.new_id()):
        try:
            count = run()
        except Exception:
            telemetry.round_done(job=job, status="error", started=started)
            rounds_summary.add(job=job, status="error", count=0)
            raise
        job_run_record(name=job)
        telemetry.round_done(job=job, status="ok", started=started, count=count)
        rounds_summary.add(job=job, status="ok", count=count)
    return count


class RoundsSummary:
    """What the worker's rounds did since the last summary: runs, rows or files changed and errors by job,
    logged as one INFO line by the round that ends a period of SEGMENTER_JOBS_SUMMARY_SECONDS (rounds that
    changed nothing are logged only at DEBUG, so an idle worker writes this line and little else)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = time.monotonic()
        self._jobs: dict[str, dict[str, int]] = {}

    def add(self, *, job: str, status: str, count: int) -> None:
        with self._lock:
            entry = self._jobs.setdefault(job, {"runs": 0, "changed": 0, "errors": 0})
            entry["runs"] += 1
            entry["changed"] += count
            entry["errors"] += status != "ok"
            now = time.monotonic()
            seconds = now - self._since
            if seconds < settings.SEGMENTER_JOBS_SUMMARY_SECONDS:
                return
            jobs, self._jobs, self._since = self._jobs, {}, now
        done = ", ".join(f"{name} {entry['runs']}x changed {entry['changed']}" for name, entry in sorted(jobs.items()))
        logger.info("jobs in the last %d s: %s", seconds, done, extra={"summary_seconds": round(seconds), "jobs": jobs})


rounds_summary = RoundsSummary()


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
    """Run the task queue's worker (every app's tasks.py, periodic jobs included) until SIGTERM or SIGINT:
    one procrastinate worker with `concurrency` slots on JOBS_QUEUE and one on each queue of QUEUES with its
    slots, in one process whose thread pool has a thread for every slot (asyncio's default, cores + 4, would
    let jobs blocked on other hosts take the threads the sweep needs). They stop and start again together.

    procrastinate's worker stops by itself when its database goes away (its listener or periodic deferrer
    fails, say on a PostgreSQL restart), and cannot start while the database is down: both are logged and
    the worker starts again after RESTART_DELAYS, so the process (and `make run` with it) outlives the
    restart. Only a signal ends it. The worker needs an asynchronous connection pool of its own (psycopg
    3's), on the same database, opened afresh for each start.
    """
    lanes = {JOBS_QUEUE: concurrency, **{queue: slots() for queue, slots in QUEUES.items()}}
    asyncio.run(_worker_until_signal(lanes))


async def _worker_until_signal(lanes: dict[str, int]) -> None:
    from procrastinate.contrib.django import app

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(sum(lanes.values()) + 4, "job"))
    app = app.with_connector(app.connector.get_worker_connector())
    stopping = asyncio.Event()
    running: asyncio.Task | None = None

    def stop() -> None:  # cancelling the worker's task is its graceful stop: running jobs finish first
        if stopping.is_set():
            return  # a second signal (make run's Ctrl-C sends SIGINT, then SIGTERM) does not cut that short
        stopping.set()
        if running is not None:
            running.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    quick = 0  # stops in a row after a short run
    while not stopping.is_set():
        started = time.monotonic()
        running = asyncio.create_task(_worker_once(app, lanes))
        try:
            await running
        except asyncio.CancelledError:
            if not stopping.is_set():
                raise
        except Exception:
            logger.exception("the worker could not run")
        if stopping.is_set():
            break
        quick = 0 if time.monotonic() - started >= RESTART_RESET_SECONDS else quick + 1
        delay = RESTART_DELAYS[min(quick, len(RESTART_DELAYS) - 1)]
        logger.warning("the worker stopped without a signal (its database went away?): starting again in %s s", delay)
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)


async def _worker_once(app, lanes: dict[str, int]) -> None:
    # The periodic deferrer queues jobs through Django's connection, in the one thread asgiref keeps for
    # thread-sensitive calls; after a restart of the database that connection is closed, and only a job's
    # clean-up would replace it. Closed here, the deferrer's first query after a restart opens a new one.
    await sync_to_async(connections.close_all, thread_sensitive=True)()
    async with app.open_async():
        # Each lane's worker runs the periodic deferrer too: a tick is queued once whoever defers it.
        workers = [
            asyncio.create_task(
                app.run_worker_async(queues=[queue], concurrency=slots, name=queue, install_signal_handlers=False)
            )
            for queue, slots in lanes.items()
        ]
        try:  # one that stops (its database went away) stops the others: they start again together
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for worker in workers:
                worker.cancel()  # a graceful stop: running jobs finish first
            await asyncio.gather(*workers, return_exceptions=True)
        for worker in done:
            worker.result()  # its exception, if it had one
