"""Periodic jobs on the task queue (procrastinate), run by `manage.py worker`.

Each is deferred once per tick whichever number of workers run (procrastinate records the tick),
queued at most once (`queueing_lock`) and run by one worker at a time (`lock`).
"""

from procrastinate import exceptions, jobs
from procrastinate.contrib.django import app

from core.jobs import EXPIRY_SWEEP, job_round
from core.throttles import rate_counts_purge
from events.services.received import events_purge, messages_purge
from reports.services import reports_purge
from segments.services import history_partitions_ensure, import_files_purge, memberships_expire

STALLED_SECONDS = 10  # settings.PROCRASTINATE_WORKER_DEFAULTS: heartbeat every 2 s, stalled after 10 s

# The periodic jobs by name: each task below runs one; `manage.py worker --once` runs them all here.
JOBS = {
    EXPIRY_SWEEP: memberships_expire,  # TTLs that passed: removed, with `ttl` history and events
    "purge_reports": reports_purge,  # report files older than SEGMENTER_REPORT_TTL_HOURS
    "history_partitions": history_partitions_ensure,  # history's monthly partitions, created ahead
    "purge_events": events_purge,  # events past SEGMENTER_EVENT_RETENTION_DAYS that every webhook has received
    "purge_messages": messages_purge,  # webhook messages delivered before SEGMENTER_EVENT_RETENTION_DAYS
    "purge_rates": rate_counts_purge,  # request counts of rate windows that ended (core/throttles.py)
    "purge_import_files": import_files_purge,  # import files no unfinished import owns, an hour after written
}


@app.periodic(cron="* * * * * *", periodic_id=EXPIRY_SWEEP)  # every second: `ttl` events within 2 s
@app.task(name=EXPIRY_SWEEP, queueing_lock=EXPIRY_SWEEP, lock=EXPIRY_SWEEP)
def expire_memberships(timestamp: int) -> int:
    return job_round(EXPIRY_SWEEP, JOBS[EXPIRY_SWEEP])


@app.periodic(cron="* * * * * */2", periodic_id="purge_reports")  # every 2 s (seconds are the 6th field)
@app.task(name="purge_reports", queueing_lock="purge_reports", lock="purge_reports")
def purge_reports(timestamp: int) -> int:
    return job_round("purge_reports", JOBS["purge_reports"])


@app.periodic(cron="* * * * *", periodic_id="history_partitions")  # every minute: months are created ahead
@app.task(name="history_partitions", queueing_lock="history_partitions", lock="history_partitions")
def history_partitions(timestamp: int) -> int:
    return job_round("history_partitions", JOBS["history_partitions"])


@app.periodic(cron="*/10 * * * *", periodic_id="purge_events")  # every 10 minutes
@app.task(name="purge_events", queueing_lock="purge_events", lock="purge_events")
def purge_events(timestamp: int) -> int:
    return job_round("purge_events", JOBS["purge_events"])


@app.periodic(cron="5-59/10 * * * *", periodic_id="purge_messages")  # every 10 minutes, between purge_events
@app.task(name="purge_messages", queueing_lock="purge_messages", lock="purge_messages")
def purge_messages(timestamp: int) -> int:
    return job_round("purge_messages", JOBS["purge_messages"])


@app.periodic(cron="* * * * *", periodic_id="purge_rates")  # every minute
@app.task(name="purge_rates", queueing_lock="purge_rates", lock="purge_rates")
def purge_rates(timestamp: int) -> int:
    return job_round("purge_rates", JOBS["purge_rates"])


@app.periodic(cron="* * * * *", periodic_id="purge_import_files")  # every minute
@app.task(name="purge_import_files", queueing_lock="purge_import_files", lock="purge_import_files")
def purge_import_files(timestamp: int) -> int:
    return job_round("purge_import_files", JOBS["purge_import_files"])


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
