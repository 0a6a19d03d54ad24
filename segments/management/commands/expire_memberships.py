import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError

from segmenter import telemetry
from segments.services import memberships_expire


class Command(BaseCommand):
    help = "Remove memberships whose TTL has passed, writing a `ttl` history event for each."

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
            expired = self.sweep()
            self.stdout.write(f"expired {expired} memberships")
            self.stdout.flush()
            if not loop or stop.wait(interval):
                break
        if loop:
            self.stdout.write("stopped")

    def sweep(self) -> int:
        """One round, logged as one JSON line with its own id (as a request is)."""
        started = time.perf_counter()
        with telemetry.bound_id(telemetry.new_id()):
            try:
                expired = memberships_expire()
            except Exception:
                telemetry.round_done(job="expire_memberships", status="error", started=started)
                raise
            telemetry.round_done(job="expire_memberships", status="ok", started=started, expired=expired)
        return expired
