from django.core.management.base import BaseCommand, CommandError

from core.jobs import jobs_run_once, worker_run
from reports.services import reports_purge
from segments.services import memberships_expire


class Command(BaseCommand):
    help = "The background work on the task queue (TTL sweep, report purge, event log), until SIGTERM or SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Sweep and purge once here, then exit")
        parser.add_argument("--concurrency", type=int, default=4, help="Jobs run at once by this process")

    def handle(self, *args, once: bool, concurrency: int, **options):
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        if once:
            jobs = {"expire_memberships": memberships_expire, "purge_reports": reports_purge}
            jobs_run_once(jobs, report=self._line)
            return
        worker_run(concurrency=concurrency)

    def _line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
