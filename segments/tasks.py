"""Segments' jobs on the task queue, run by `manage.py worker`: the periodic ones (core/jobs.py periodic_job),
and imports, one job per import, deferred with it (services/imports.py); one import of a segment runs at a time
(the job's lock), and a dead worker's job runs again and resumes it, as does a job that lost its database
connection (retried every 5 s, without end: an import never stays running unowned)."""

from django.db import InterfaceError, OperationalError
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from core.jobs import job_round, periodic_job
from segments.services import history_partitions_ensure, import_files_purge, memberships_expire, relative_rules_apply
from segments.services.imports import RUN_TASK, import_run

EXPIRY_SWEEP = "expire_memberships"  # the job whose last run /metrics reports

# TTLs that passed: removed, with `ttl` history and events, every second (`ttl` events within 2 s).
expire_memberships = periodic_job(EXPIRY_SWEEP, memberships_expire, cron="* * * * * *")
# History's monthly partitions, created ahead, every minute.
history_partitions = periodic_job("history_partitions", history_partitions_ensure, cron="* * * * *")
# Rules with relative times (`-P30D`) re-evaluated as time passes, every minute (as actor `system`).
relative_rules = periodic_job("relative_rules", relative_rules_apply, cron="* * * * *")
# Import files no unfinished import owns, an hour after they were written, every minute.
purge_import_files = periodic_job("purge_import_files", import_files_purge, cron="* * * * *")


@app.task(name=RUN_TASK, retry=RetryStrategy(wait=5, retry_exceptions=[InterfaceError, OperationalError]))
def run_import(import_id: int) -> int:
    """Run the import; its log line counts the lines it has applied."""
    return job_round(RUN_TASK, lambda: import_run(import_id).done)
