"""Periodic jobs on the task queue (procrastinate), run by `manage.py worker`.

Each is deferred once per tick whichever number of workers run (procrastinate records the tick),
queued at most once (`queueing_lock`) and run by one worker at a time (`lock`).
"""

from procrastinate import exceptions, jobs
from procrastinate.contrib.django import app

from core.jobs import EXPIRY_SWEEP, job_round
from reports.services import reports_purge
from segments.services import memberships_expire

STALLED_SECONDS = 10  # settings.PROCRASTINATE_WORKER_DEFAULTS: heartbeat every 2 s, stalled after 10 s


@app.periodic(cron="* * * * * *", periodic_id=EXPIRY_SWEEP)  # every second: `ttl` events within 2 s
@app.task(name=EXPIRY_SWEEP, queueing_lock=EXPIRY_SWEEP, lock=EXPIRY_SWEEP)
def expire_memberships(timestamp: int) -> int:
    return job_round(EXPIRY_SWEEP, memberships_expire)


@app.periodic(cron="*/2 * * * * *", periodic_id="purge_reports")
@app.task(name="purge_reports", queueing_lock="purge_reports", lock="purge_reports")
def purge_reports(timestamp: int) -> int:
    return job_round("purge_reports", reports_purge)


@app.periodic(cron="*/5 * * * * *", periodic_id="retry_stalled_jobs")
@app.task(name="retry_stalled_jobs", queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context, timestamp: int) -> int:
    """Jobs of a worker that died (no heartbeat for STALLED_SECONDS) run again: nothing a job was doing
    is lost, and its lock is freed for the next run."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS))
    for job in stalled:
        try:
            await manager.retry_job(job)
        except exceptions.UniqueViolation:  # the same work is queued again already (its queueing lock)
            await manager.finish_job(job, status=jobs.Status.ABORTED, delete_job=True)
    return len(stalled)
