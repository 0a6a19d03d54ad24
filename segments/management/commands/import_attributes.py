import sys

from django.core.management.base import CommandError

from core.errors import ServiceError
from segments.management.commands import import_members
from segments.models import Import
from segments.services import attribute_import_create

ACTOR = "manage.py import_attributes"


class Command(import_members.Command):
    earlier_import = "an earlier import of attributes"
    help = (
        "Import users' attributes from a file, as the API does: the worker (manage.py worker) applies it while "
        "this waits with a progress bar; exits non-zero when the import fails."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            help='NDJSON (one {"user_id": ..., "attributes": {...}} a line), a .csv file with a header line '
            "user_id,key1,key2,... (cells are strings), or - for NDJSON on standard input",
        )
        parser.add_argument(
            "--mode",
            choices=tuple(Import.ATTRIBUTE_MODES),
            default="merge",
            help="merge each line into the user's attributes (a JSON merge patch: null deletes a key), or replace them",
        )
        parser.add_argument(
            "--no-register", action="store_true", help="skip and count the listed users not registered yet"
        )
        parser.add_argument("--no-wait", action="store_true", help="queue the import and exit")

    def handle(self, *args, file: str, mode: str, no_register: bool, no_wait: bool, **options):
        queued = self._queue(file, mode, register=not no_register)
        self.stdout.write(f"import {queued.pk} of attributes queued ({mode}): GET /api/v1/imports/{queued.pk}/")
        if no_wait:
            return
        try:
            finished = self._wait(queued.pk)
        except KeyboardInterrupt:
            raise CommandError(
                f"stopped waiting; import {queued.pk} goes on in the worker", returncode=import_members.INTERRUPTED
            ) from None
        self.stdout.write(_summary(finished))
        if finished.status == Import.Status.FAILED:
            problems = "".join(f"\nline {p['line']}: {p['error']}" for p in finished.invalid_lines)
            raise CommandError(f"import {finished.pk} failed: {finished.error}{problems}")

    def _queue(self, file: str, mode: str, *, register: bool) -> Import:
        try:
            body = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            created, _ = attribute_import_create(
                body=body,
                format="csv" if file.lower().endswith(".csv") else "ndjson",
                mode=mode,
                register=register,
                actor=ACTOR,
            )
        except ServiceError as exc:
            raise CommandError(exc.detail) from None
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        finally:
            if body is not sys.stdin.buffer:
                body.close()
        return created


def _summary(current: Import) -> str:
    applied = "no line applied" if current.total is None else f"{current.done} of {current.total} lines applied"
    return (
        f"import {current.pk} {current.status}: {applied}; {current.count('created')} users registered,"
        f" {current.count('updated')} updated, {current.unknown_users} unknown users skipped"
        + (f" (first: {', '.join(map(str, current.unknown_user_ids))})" if current.unknown_user_ids else "")
        + f"; rule segments: {current.count('entered')} entered, {current.count('left')} left"
    )
