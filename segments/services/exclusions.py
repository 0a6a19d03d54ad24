"""Exclusions: users automatic assignment leaves out of a segment (API.md, "Segments defined by rules").

A manual removal of an automatic member excludes it and a manual add ends its exclusion, both in the PATCH's
function (migrations/sql/0015_rules.sql); deleting an exclusion is here.
"""

from django.db import connection, transaction

from segments.errors import ExclusionNotFound, SegmentNotFound
from segments.services.automatic import automatic_apply


def exclusion_delete(*, slug: str, user_id: int, actor: str) -> None:
    """End a user's exclusion from a segment, and evaluate the user at once (it joins if the segment's
    definition gives it). The user's row is locked first, as its attribute writes lock it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM segments_segment WHERE slug = %s", [slug])
        row = cursor.fetchone()
        if row is None:
            raise SegmentNotFound([slug])
        segment_id = row[0]
        cursor.execute("SELECT 1 FROM users_user WHERE id = %s FOR NO KEY UPDATE", [user_id])
        cursor.execute("DELETE FROM segments_exclusion WHERE segment_id = %s AND user_id = %s", [segment_id, user_id])
        if cursor.rowcount == 0:
            raise ExclusionNotFound(slug, user_id)
        automatic_apply(actor=actor, segment_ids=[segment_id], user_ids=[user_id])
