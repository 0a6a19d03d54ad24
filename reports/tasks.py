"""Reports' periodic job on the task queue (core/jobs.py periodic_job), run by `manage.py worker`."""

from core.jobs import periodic_job
from reports.services import reports_purge

# Report files older than SEGMENTER_REPORT_TTL_HOURS, every 2 s (seconds are the 6th field).
purge_reports = periodic_job("purge_reports", reports_purge, cron="* * * * * */2")
