from django.core.management.base import BaseCommand, CommandError

from core.jobs import PERIODIC_JOBS, jobs_run_once, worker_run


class Command(BaseCommand):
    help = "The background work on the task queue (periodic jobs, event log, webhooks), until SIGTERM or SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run each periodic job once here, then exit")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=4,
            help="Periodic jobs and imports run at once by this process (webhook deliveries have"
            " SEGMENTER_WEBHOOK_MAX slots of their own)",
        )

    def handle(self, *args, once: bool, concurrency: int, **options):
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        if once:
            jobs_run_once(PERIODIC_JOBS, report=self._line)
            return
        worker_run(concurrency=concurrency)

    def _line(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
