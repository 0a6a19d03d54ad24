"""The event log (membership and segment events) and the webhooks that receive it.

Events are written by SQL in the same statement as each history row (segments/services/history.py
and segments/sql/memberships_update.sql write this table by name); this app owns the table and
everything that reads it. `position` is given later, in commit order (events/services/log.py).
"""

from django.db import models


class Event(models.Model):
    class Type(models.TextChoices):
        ADDED = "membership.added"
        REMOVED = "membership.removed"
        SEGMENT_CREATED = "segment.created"
        SEGMENT_UPDATED = "segment.updated"
        SEGMENT_DELETED = "segment.deleted"

    type = models.CharField(max_length=20, choices=Type.choices)
    user_id = models.BigIntegerField(null=True)
    segment = models.CharField(max_length=100)
    at = models.DateTimeField()
    source = models.CharField(max_length=15, blank=True, db_default="")  # membership events only
    actor = models.CharField(max_length=150, blank=True, db_default="")
    changes = models.JSONField(null=True)
    # Commit order: set by the sequencer once the writing transaction has committed; readers read by it.
    position = models.BigIntegerField(null=True, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=models.Q(position__isnull=True), name="event_unsequenced"),
        ]

    def __str__(self) -> str:
        return f"evt_{self.pk} {self.type} {self.segment}"
