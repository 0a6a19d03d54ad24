from django.core.management.base import BaseCommand

from core.jobs import jobs_run_once, worker_run
from segments.services import memberships_expire
from segments.tasks import EXPIRY_SWEEP


class Command(BaseCommand):
    help = "Remove memberships whose TTL has passed, writing a `ttl` history event for each."

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", action="store_true", help="Run the task queue's worker (a sweep every second) until SIGTERM"
        )

    def handle(self, *args, loop: bool, **options):
        if loop:
            worker_run(concurrency=4)
            return
        jobs_run_once({EXPIRY_SWEEP: memberships_expire}, report=self._line)

    def _line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
