import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import ServiceError
from segments.models import Import
from segments.services import import_create
from segments.services.imports import MODES
from segments.services.memberships import MAX_TTL_SECONDS

ACTOR = "manage.py import_members"
POLL_SECONDS = 0.5
QUEUED_NOTICE_SECONDS = 3  # still queued after this long: say that a worker must run
FINISHED = (Import.Status.SUCCEEDED, Import.Status.FAILED)
INTERRUPTED = 130  # the exit status of a process stopped by Ctrl-C


class Command(BaseCommand):
    earlier_import = "an earlier import of the segment"  # what a queued import may wait for, besides a worker
    help = (
        "Import a file of user ids into a segment, as the API does: the worker (manage.py worker) applies it "
        "while this waits with a progress bar; exits non-zero when the import fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "file",
            help='CSV (one user id a line, optionally ",expires_at"; an optional header line), '
            'a .json file ({"user_ids": [...]}), or - for CSV on standard input',
        )
        parser.add_argument(
            "--mode",
            choices=MODES,
            default="add",
            help="add the listed users, remove them, or make them the only manual members (replace)",
        )
        parser.add_argument("--ttl-seconds", type=int, metavar="N", help="added users leave after N seconds")
        parser.add_argument(
            "--register", action="store_true", help="register the listed users not registered yet (add, replace)"
        )
        parser.add_argument("--no-wait", action="store_true", help="queue the import and exit")

    def handle(
        self, *args, slug: str, file: str, mode: str, ttl_seconds: int | None, register: bool, no_wait: bool, **options
    ):
        if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise CommandError(f"--ttl-seconds must be from 1 to {MAX_TTL_SECONDS}")
        if register and mode == "remove":
            raise CommandError("--register goes with --mode add or replace: remove registers nobody")
        queued = self._create(slug, file, mode, ttl_seconds, register)
        self.stdout.write(f"import {queued.pk} of {slug} queued ({mode}): GET /api/v1/imports/{queued.pk}/")
        if no_wait:
            return
        try:
            finished = self._wait(queued.pk)
        except KeyboardInterrupt:
            raise CommandError(
                f"stopped waiting; import {queued.pk} goes on in the worker", returncode=INTERRUPTED
            ) from None
        self.stdout.write(_summary(finished))
        if finished.status == Import.Status.FAILED:
            problems = "".join(f"\nline {p['line']}: {p['error']}" for p in finished.invalid_lines)
            raise CommandError(f"import {finished.pk} failed: {finished.error}{problems}")

    def _create(self, slug: str, file: str, mode: str, ttl_seconds: int | None, register: bool) -> Import:
        try:
            body = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        try:
            created, _ = import_create(
                slug=slug,
                body=body,
                format="json" if file.lower().endswith(".json") else "csv",
                mode=mode,
                ttl_seconds=ttl_seconds,
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

    def _wait(self, import_id: int) -> Import:
        """Poll the import until it has finished, with a progress bar on a terminal."""
        waiting_since, noticed = time.monotonic(), False
        with tqdm(unit="lines", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
            while True:
                current = Import.objects.get(pk=import_id)
                bar.total, bar.n = current.total, current.done
                checking = current.status == Import.Status.RUNNING and current.total is None
                bar.set_description_str("checking" if checking else current.status)
                if current.status in FINISHED:
                    return current
                if current.status != Import.Status.QUEUED:
                    waiting_since = time.monotonic()
                elif not noticed and time.monotonic() - waiting_since >= QUEUED_NOTICE_SECONDS:
                    noticed = True
                    with tqdm.external_write_mode(file=sys.stderr):
                        self.stderr.write(
                            f"waiting for a worker (manage.py worker), or for {self.earlier_import}",
                            style_func=self.style.WARNING,
                        )
                time.sleep(POLL_SECONDS)


def _summary(current: Import) -> str:
    applied = "no line applied" if current.total is None else f"{current.done} of {current.total} lines applied"
    return (
        f"import {current.pk} {current.status}: {applied}; {current.added} added, {current.removed} removed,"
        f" {current.already_member} already members, {current.unknown_users} unknown users"
        + (f" (first: {', '.join(map(str, current.unknown_user_ids))})" if current.unknown_user_ids else "")
        + (f", {current.registered} registered" if current.register else "")
    )
