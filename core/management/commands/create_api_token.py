from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from core.auth import token_create


class Command(BaseCommand):
    help = "Create an API token; prints the token alone on the last line (it is not stored, only its hash)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--read-only", action="store_true")

    def handle(self, *args, name: str, read_only: bool, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1-100 characters")
        try:
            _, token = token_create(name=name, read_only=read_only)
        except IntegrityError:
            raise CommandError(f"A token named {name!r} exists already") from None
        kind = "read-only" if read_only else "read-write"
        self.stdout.write(f"Created {kind} API token {name!r}. Use it as 'Authorization: Bearer <token>':")
        self.stdout.write(token)
