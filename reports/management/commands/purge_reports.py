from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from reports.services import reports_purge


class Command(BaseCommand):
    help = (
        "Delete report files (MEDIA_ROOT/reports) written more than DAYS days ago "
        "(default: SEGMENTER_REPORT_TTL_HOURS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", dest="days", type=float, metavar="DAYS")

    def handle(self, *args, days: float | None, **options):
        if days is not None and not 0 <= days <= 36_600:
            raise CommandError("--older-than must be a number of days from 0 to 36600")
        deleted = reports_purge(older_than=None if days is None else timedelta(days=days))
        self.stdout.write(f"deleted {deleted} report files")
