from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from events.services.received import events_purge
from reports.periods import month_parse
from segments.services import history_purge


class Command(BaseCommand):
    help = (
        "Drop history's monthly partitions before the month YYYY-MM (UTC), oldest first, and the "
        "DEFAULT partition's rows before it. The month itself and later ones stay. Then the event log's "
        "events before it that every webhook has received, if older than SEGMENTER_EVENT_RETENTION_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, metavar="YYYY-MM", help="The first month to keep")

    def handle(self, *args, before: str, **options):
        try:
            month = month_parse(before)
        except ValueError as exc:
            raise CommandError(f"--before {before!r}: {exc}") from None
        with connection.cursor() as cursor:
            cursor.execute("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')")
            (current,) = cursor.fetchone()
        if (month.year, month.month) > (current.year, current.month):
            raise CommandError(
                f"--before {month}: {current:%Y-%m} is being written; the latest month allowed is {current:%Y-%m}."
            )
        total = 0
        for name, rows in history_purge(before=month.start()):
            total += rows
            self.stdout.write(f"{name}: {rows} events removed")
            self.stdout.flush()
        self.stdout.write(f"purged {total} events before {month}")
        self.stdout.write(f"event log: {events_purge(before=month.start())} events removed")
