from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from segments.services import rollout_apply


class Command(BaseCommand):
    help = "Set a segment's rollout percent (0-100, two decimals) and apply it; --dry-run only counts."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("percent")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, slug: str, percent: str, dry_run: bool, **options):
        try:
            value = Decimal(percent)
        except InvalidOperation:
            raise CommandError(f"PERCENT must be a number from 0 to 100, not {percent!r}") from None
        if not value.is_finite() or not 0 <= value <= 100 or value != value.quantize(Decimal("0.01")):
            raise CommandError("PERCENT must be from 0 to 100 with at most two decimals")
        try:
            result = rollout_apply(slug=slug, percent=value, dry_run=dry_run, actor="manage.py rollout")
        except ServiceError as exc:
            raise CommandError(exc.detail) from None
        verb = "would add" if dry_run else "added"
        self.stdout.write(
            f"{result.slug} at {result.percent}%: {verb} {result.added}, "
            f"{'would remove' if dry_run else 'removed'} {result.removed}"
        )
