from django.core.management.base import BaseCommand, CommandError

from core.jobs import jobs_run
from reports.services import reports_purge
from segments.services import history_partitions_ensure, memberships_expire

JOBS = {
    "expire_memberships": memberships_expire,  # TTLs that passed: removed, with `ttl` history
    "purge_reports": reports_purge,  # report files older than SEGMENTER_REPORT_TTL_HOURS
    "history_partitions": history_partitions_ensure,  # history's monthly partitions, created ahead
}


class Command(BaseCommand):
    help = "The background work: every periodic job each round, until SIGTERM or SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One round, then exit")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between rounds")

    def handle(self, *args, once: bool, interval: float, **options):
        if interval <= 0:
            raise CommandError("--interval must be positive")
        jobs_run(JOBS, loop=not once, interval=interval, report=self._line)

    def _line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
