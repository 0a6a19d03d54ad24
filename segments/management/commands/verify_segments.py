from django.core.management.base import BaseCommand, CommandError

from segments.models import Segment
from segments.services import automatic_verify


class Command(BaseCommand):
    help = (
        "Recompute every automatic membership (rules, rollouts, exclusions) set-based and print each user whose"
        " stored membership differs from its definition: `missing` (should be in, is not) or `extra` (a rule or"
        " rollout member that should not be); exits 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slug", help="Only this segment")

    def handle(self, *args, slug: str | None, **options):
        segment_ids = None
        if slug is not None:
            segment_ids = list(Segment.objects.filter(slug=slug).values_list("id", flat=True))
            if not segment_ids:
                raise CommandError(f"Unknown segment: {slug}")
        problems = automatic_verify(segment_ids=segment_ids)
        for found_slug, user_id, problem in problems:
            self.stdout.write(f"{found_slug} {user_id} {problem}")
        if problems:
            raise CommandError(f"{len(problems)} memberships differ from their definitions", returncode=1)
        self.stdout.write("Every automatic membership agrees with its definition.")
