"""Imports on the task queue: one job per import, deferred with it (services/imports.py); one import of a
segment runs at a time (the job's lock), and a dead worker's job runs again and resumes it, as does a job
that lost its database connection (retried every 5 s, without end: an import never stays running unowned)."""

from django.db import InterfaceError, OperationalError
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from core.jobs import job_round
from segments.services.imports import RUN_TASK, import_run


@app.task(name=RUN_TASK, retry=RetryStrategy(wait=5, retry_exceptions=[InterfaceError, OperationalError]))
def run_import(import_id: int) -> int:
    """Run the import; its log line counts the lines it has applied."""
    return job_round(RUN_TASK, lambda: import_run(import_id).done)
