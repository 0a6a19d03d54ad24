import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from users.services import users_seed


class Command(BaseCommand):
    help = "Register users START..START+COUNT-1 (idempotent, set-based). Default: 1000 users from id 1000."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--start", type=int, default=1000)

    def handle(self, *args, count: int, start: int, **options):
        if count < 0 or start < 1 or start + count - 1 > 9223372036854775807:
            raise CommandError("--count must be >= 0 and ids must lie in 1..9223372036854775807")
        show = count >= 100_000 and sys.stderr.isatty()
        with tqdm(total=count, unit="users", disable=not show, file=sys.stderr) as bar:
            created = users_seed(count=count, start=start, actor="seed_users", progress=bar.update)
        self.stdout.write(
            f"{created} users created, {count - created} already existed (ids {start}..{start + count - 1})"
        )
