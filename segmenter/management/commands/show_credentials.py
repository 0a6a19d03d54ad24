import os
import sys
import time
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.models import JobRun
from segments.tasks import EXPIRY_SWEEP

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Show FILE (quickstart --save's credentials) once the server answers its health check and the worker has"
        " run the expiry sweep, so they come after the start-up lines (`make run`)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--url", default="http://" + os.environ.get("SERVE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--timeout", type=float, default=300.0, help="Give up (and say so) after this many seconds")

    def handle(self, *args, file: str, url: str, timeout: float, **options):
        path = Path(file)
        if not path.exists():
            raise CommandError(f"{file} is missing: run `.venv/bin/python manage.py quickstart --save {file}`")
        parent, deadline = os.getppid(), time.monotonic() + timeout
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            since = cursor.fetchone()[0]
        try:
            while not (self._healthy(url) and self._swept_since(since)):
                if os.getppid() != parent:
                    return  # `make run` ended first: nobody to show them to
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"the service did not come up within {timeout:g} s; the credentials are in {file}"
                    )
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:  # Ctrl-C on `make run` before the service was up
            sys.exit(130)
        self.stdout.write("\n" + path.read_text())
        self.stdout.flush()

    def _healthy(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/health/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def _swept_since(self, since) -> bool:
        return JobRun.objects.filter(name=EXPIRY_SWEEP, finished_at__gt=since).exists()
