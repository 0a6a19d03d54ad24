"""The event log (membership and segment events) and the webhooks that receive it.

Events are written by this app's triggers (migrations/sql/0006_event_journal.sql), in the statement that
makes their change: one for each history row segments' membership journal writes, one for each segment
created, changed or deleted. This app owns the table, what writes it and everything that reads it.
`position` is given later, in commit order (events/services/log.py).
"""

from django.db import models


class EventType(models.TextChoices):
    """Every event type, in one place: the triggers write `membership.<history operation>` and
    `segment.created|updated|deleted`, and the table's check constraint holds them to this list."""

    ADDED = "membership.added"
    REMOVED = "membership.removed"
    SEGMENT_CREATED = "segment.created"
    SEGMENT_UPDATED = "segment.updated"
    SEGMENT_DELETED = "segment.deleted"


MEMBERSHIP_EVENT_TYPES = frozenset({EventType.ADDED, EventType.REMOVED})


class Event(models.Model):
    Type = EventType

    type = models.CharField(max_length=20, choices=Type.choices)
    user_id = models.BigIntegerField(null=True)
    segment = models.CharField(max_length=100)
    at = models.DateTimeField()
    source = models.CharField(max_length=15, blank=True, db_default="")  # membership events only
    actor = models.CharField(max_length=150, blank=True, db_default="")
    changes = models.JSONField(null=True)
    # Commit order: set by the sequencer once the writing transaction has committed; readers read by it.
    position = models.BigIntegerField(null=True)

    class Meta:
        # An insert (on the PATCH's path) writes two index entries: the key and `event_unsequenced`; the
        # position's unique index gets its entry when the sequencer numbers the row (events/services/log.py).
        indexes = [
            models.Index(fields=["id"], condition=models.Q(position__isnull=True), name="event_unsequenced"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["position"], condition=models.Q(position__isnull=False), name="event_position_unique"
            ),
            models.CheckConstraint(condition=models.Q(type__in=EventType.values), name="event_type_valid"),
        ]

    def __str__(self) -> str:
        return f"evt_{self.pk} {self.type} {self.segment}"


class Webhook(models.Model):
    """A receiver of the event log; `last_position` is the last event position put into one of its messages."""

    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=500, blank=True, default="")
    event_types = models.JSONField(default=list)  # empty: all
    segments = models.JSONField(default=list)  # slugs; empty: all
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)  # whsec_…, shown once at creation
    created_at = models.DateTimeField(auto_now_add=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_position = models.BigIntegerField(default=0)
    # After a slow success, nothing is sent before this (events/services/delivery.py SLOW_FRACTION).
    paused_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.url


class Message(models.Model):
    """One POST to a webhook (a batch of events or a ping), sent until a 2xx; `msg_id` is its webhook-id."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="messages")
    msg_id = models.CharField(max_length=60, unique=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["webhook", "id"], condition=models.Q(delivered_at__isnull=True), name="message_pending"
            ),
        ]

    def __str__(self) -> str:
        return self.msg_id


class Delivery(models.Model):
    """One attempt at sending a message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.IntegerField()
    status_code = models.IntegerField(null=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.IntegerField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.message_id} #{self.attempt}"
