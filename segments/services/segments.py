"""Creating, changing and deleting segments."""

from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now

from segments.errors import SegmentExists, SegmentNotFound
from segments.models import Segment
from segments.services.journal import journal
from segments.services.memberships import memberships_remove_all
from segments.services.rollout import rollout_apply


def segment_get(*, slug: str) -> Segment:
    segment = Segment.objects.filter(slug=slug).first()
    if segment is None:
        raise SegmentNotFound([slug])
    return segment


def segment_create(*, slug: str, description: str = "", rollout_percent: Decimal = Decimal(0), actor: str) -> Segment:
    """Create a segment (a `segment.created` event); with a rollout percent, its covered users join
    in the same transaction."""
    with transaction.atomic(), journal(actor=actor):
        try:
            with transaction.atomic():
                segment = Segment.objects.create(slug=slug, description=description, rollout_percent=rollout_percent)
        except IntegrityError:
            raise SegmentExists(slug) from None
        if rollout_percent:
            rollout_apply(slug=slug, percent=rollout_percent, actor=actor)
    return Segment.objects.get(pk=segment.pk)


def segment_update(
    *, slug: str, description: str | None = None, rollout_percent: Decimal | None = None, actor: str
) -> Segment:
    """Change the fields given (None leaves a field as it is); a `segment.updated` event for each write that
    changes one."""
    with transaction.atomic(), journal(actor=actor):
        found = list(Segment.objects.raw("SELECT * FROM segments_segment WHERE slug = %s FOR NO KEY UPDATE", [slug]))
        segment = found[0] if found else None
        if segment is None:
            raise SegmentNotFound([slug])
        if description is not None and description != segment.description:
            Segment.objects.filter(pk=segment.pk).update(description=description, updated_at=Now())
        if rollout_percent is not None and Decimal(rollout_percent) != segment.rollout_percent:
            rollout_apply(slug=slug, percent=rollout_percent, actor=actor)
    return Segment.objects.get(pk=segment.pk)


def segment_upsert(
    *, slug: str, description: str | None = None, rollout_percent: Decimal | None = None, actor: str
) -> tuple[Segment, bool]:
    """PUT: create the segment if it is missing, else change the fields given. Returns (segment, created)."""
    with transaction.atomic():
        try:
            return (
                segment_create(
                    slug=slug, description=description or "", rollout_percent=rollout_percent or 0, actor=actor
                ),
                True,
            )
        except SegmentExists:
            pass
        return segment_update(slug=slug, description=description, rollout_percent=rollout_percent, actor=actor), False


def segment_delete(*, slug: str, actor: str) -> int:
    """Delete a segment; every member leaves with a `segment_deleted` event. Returns how many."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM segments_segment WHERE slug = %s FOR UPDATE", [slug])
            row = cursor.fetchone()
            if row is None:
                raise SegmentNotFound([slug])
            segment_id = row[0]
        removed = memberships_remove_all(segment_id=segment_id, source="segment_deleted", actor=actor)
        with journal(actor=actor), connection.cursor() as cursor:
            cursor.execute("DELETE FROM segments_segment WHERE id = %s", [segment_id])
    return removed
