"""core's jobs on the task queue (procrastinate), run by `manage.py worker`: the purge of ended rate windows and
the retry of dead workers' jobs. Each app declares its own periodic jobs in its tasks.py (core/jobs.py
periodic_job)."""

from procrastinate import exceptions, jobs
from procrastinate.contrib.django import app

from core.jobs import periodic_job
from core.throttles import rate_counts_purge

STALLED_SECONDS = 10  # settings.PROCRASTINATE_WORKER_DEFAULTS: heartbeat every 2 s, stalled after 10 s

# Request counts of rate windows that ended (core/throttles.py), every minute.
purge_rates = periodic_job("purge_rates", rate_counts_purge, cron="* * * * *")


@app.periodic(cron="* * * * * */5", periodic_id="retry_stalled_jobs")  # every 5 s
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
