import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from reports.services import reports_purge
from segments.services import memberships_expire


class Command(BaseCommand):
    help = (
        "Remove memberships whose TTL has passed, writing a `ttl` history event for each, and delete "
        "report files older than SEGMENTER_REPORT_TTL_HOURS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sweeping until SIGTERM or SIGINT")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between sweeps with --loop")

    def handle(self, *args, loop: bool, interval: float, **options):
        if interval <= 0:
            raise CommandError("--interval must be positive")
        stop = threading.Event()
        if loop:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        while True:
            expired = memberships_expire()
            purged = reports_purge()
            self.stdout.write(f"expired {expired} memberships, deleted {purged} report files")
            self.stdout.flush()
            if not loop or stop.wait(interval):
                break
        if loop:
            self.stdout.write("stopped")
