from django.core.management.base import BaseCommand, CommandError

from core.jobs import jobs_run
from segments.services import memberships_expire


class Command(BaseCommand):
    help = "Remove memberships whose TTL has passed, writing a `ttl` history event for each."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sweeping until SIGTERM or SIGINT")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between sweeps with --loop")

    def handle(self, *args, loop: bool, interval: float, **options):
        if interval <= 0:
            raise CommandError("--interval must be positive")
        jobs_run({"expire_memberships": memberships_expire}, loop=loop, interval=interval, report=self._line)

    def _line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
