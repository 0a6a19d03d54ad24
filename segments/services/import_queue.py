"""Receiving imports: the body stored (import_files.py), refused or queued with its job; and the clean-up of
stored bodies that no import keeps. The worker runs queued imports (imports.py).

Whatever the answer to a request, its body stays in storage only as the file of a queued import: a refusal
(a reused Idempotency-Key, a full queue, the task queue down) deletes it at once, and a file that a killed
process left behind is deleted by the worker ORPHAN_MINUTES after it was last written.
"""

import logging
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from procrastinate.contrib.django import app

from segments.errors import IdempotencyKeyReused, ImportQueueFull, SegmentNotFound
from segments.models import Import, Segment
from segments.services.import_files import (
    ReceivedFile,
    import_file_delete,
    import_file_receive,
    import_files_written_before,
)
from segments.services.imports import RUN_TASK

logger = logging.getLogger(__name__)

UNFINISHED = (Import.Status.QUEUED, Import.Status.RUNNING)
QUEUE_LOCK_KEY = 7_146_917_264  # any constant; names the lock that queues imports one at a time
QUEUE_RETRY_AFTER = 60  # seconds, in the 503 of a full queue
# An import file that no unfinished import owns is deleted once last written this long ago: a request stores
# its body, then commits its import within moments, so a younger file may still be on its way to an import.
ORPHAN_MINUTES = 60


def import_create(
    *,
    slug: str,
    body: BinaryIO,
    format: str,
    mode: str,
    actor: str,
    ttl_seconds: int | None = None,
    register: bool = False,
    idempotency_key: str = "",
) -> tuple[Import, bool]:
    """Store the body and queue its import; returns (import, created). With an `idempotency_key`
    this actor used before for the same request, returns that import instead (created False);
    for another request, raises IdempotencyKeyReused. Raises ImportQueueFull when the stored bodies
    of unfinished imports would pass settings.SEGMENTER_IMPORT_QUEUE_BYTES with this one.
    With `register`, the listed users not registered yet are registered (add and replace), else skipped.
    Whatever the answer, the body stays in storage only as a queued import's file."""
    segment = Segment.objects.filter(slug=slug).only("id").first()
    if segment is None:
        raise SegmentNotFound([slug])
    received = import_file_receive(body, format=format)
    fields = {
        "segment_id": segment.pk,
        "segment_slug": slug,
        "mode": mode,
        "ttl_seconds": ttl_seconds,
        "register": register,
    }
    return _create(received, fields, actor=actor, idempotency_key=idempotency_key, lock=f"import_segment_{segment.pk}")


def attribute_import_create(
    *, body: BinaryIO, format: str, mode: str, actor: str, register: bool = True, idempotency_key: str = ""
) -> tuple[Import, bool]:
    """Store the body (`ndjson`, or `csv` with its header line) and queue its import of users' attributes
    (services/attribute_imports.py), `mode` merge or replace; returns (import, created), and answers a
    repeated `idempotency_key` and a full queue as import_create does. One attribute import runs at a time."""
    received = import_file_receive(body, format=format, header=format == "csv")
    fields = {
        "segment_id": Import.ATTRIBUTES_SEGMENT_ID,
        "segment_slug": "",
        "mode": Import.ATTRIBUTE_MODES[mode],
        "ttl_seconds": None,
        "register": register,
    }
    return _create(received, fields, actor=actor, idempotency_key=idempotency_key, lock="import_attributes")


def _create(
    received: ReceivedFile, fields: dict, *, actor: str, idempotency_key: str, lock: str
) -> tuple[Import, bool]:
    try:
        earlier = _earlier(actor, idempotency_key, received.sha256, fields) if idempotency_key else None
        if not earlier:
            try:
                return _queue(received, fields, actor=actor, idempotency_key=idempotency_key, lock=lock), True
            except IntegrityError:  # the same key, at the same moment: the other request's import stands
                earlier = _earlier(actor, idempotency_key, received.sha256, fields)
                if earlier is None:
                    raise
    except BaseException:
        _discard(received.name)
        raise
    _discard(received.name)
    return earlier, False


def _queue(received: ReceivedFile, fields: dict, *, actor: str, idempotency_key: str, lock: str) -> Import:
    """Create the import and its job, in one transaction, if the queue has room for its file."""
    with transaction.atomic():
        _queue_room(received.size)
        created = Import.objects.create(
            **fields,
            actor=actor,
            idempotency_key=idempotency_key,
            body_sha256=received.sha256,
            file_name=received.name,
            file_bytes=received.size,
        )
        # Queued in the same transaction: an import is never stored without its job, nor the reverse.
        app.configure_task(RUN_TASK, lock=lock).defer(import_id=created.pk)
    return created


def _queue_room(size: int) -> None:
    """Refuse a file of `size` bytes when the unfinished imports' files and it would pass the cap. The lock,
    held until the transaction ends, makes requests take turns: each counts the imports queued before it."""
    limit = settings.SEGMENTER_IMPORT_QUEUE_BYTES
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [QUEUE_LOCK_KEY])
    waiting = Import.objects.filter(status__in=UNFINISHED).aggregate(total=Sum("file_bytes"))["total"] or 0
    if waiting + size > limit:
        raise ImportQueueFull(max_bytes=limit, retry_after=QUEUE_RETRY_AFTER)


def _discard(name: str) -> None:
    """Delete a stored body no import keeps; one that resists is left to import_files_purge."""
    try:
        import_file_delete(name)
    except OSError as exc:
        logger.warning("import file %s not deleted: %s", name, exc)


def _earlier(actor: str, key: str, sha256: str, fields: dict) -> Import | None:
    earlier = Import.objects.filter(actor=actor, idempotency_key=key).first()
    if earlier is None:
        return None
    same = earlier.body_sha256 == sha256 and all(getattr(earlier, name) == value for name, value in fields.items())
    if not same:
        raise IdempotencyKeyReused(key)
    return earlier


def import_files_purge(*, older_than: timedelta = timedelta(minutes=ORPHAN_MINUTES)) -> int:
    """Delete the import files that no unfinished import owns, last written more than `older_than` ago
    (a request or a worker killed at the wrong moment leaves one); return how many."""
    names = import_files_written_before(timezone.now() - older_than)
    owned = set(Import.objects.filter(status__in=UNFINISHED, file_name__in=names).values_list("file_name", flat=True))
    orphans = [name for name in names if name not in owned]
    for name in orphans:
        import_file_delete(name)
    return len(orphans)
