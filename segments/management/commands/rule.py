import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from segments.services import rule_preview, segment_update


class Command(BaseCommand):
    help = (
        "Set a segment's rule from a JSON file (`-` for stdin) or clear it, and apply it; prints the preview"
        " counts first; --dry-run only prints them."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="The rule as JSON (`-`: standard input)")
        source.add_argument("--clear", action="store_true", help="Remove the rule (the segment becomes a rollout)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, slug: str, file: str | None, clear: bool, dry_run: bool, **options):
        rule = None if clear else self._read(file)
        try:
            preview = rule_preview(slug=slug, rule=rule)
            self.stdout.write(
                f"{slug}: matching {preview.matching}, "
                f"would add {preview.would_add}, would remove {preview.would_remove}"
            )
            if not dry_run:
                segment = segment_update(slug=slug, rule=rule, actor="manage.py rule")
                self.stdout.write(f"{slug}: rule {'cleared' if rule is None else 'saved'}, {segment.rollout_percent}%")
        except ServiceError as exc:
            raise CommandError(exc.detail) from None

    def _read(self, file: str):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
            return json.loads(text)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file} is not JSON: {exc}") from None
