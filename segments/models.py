from django.db import models
from django.db.models.functions import Now

from users.models import User

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class Segment(models.Model):
    slug = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    rollout_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rollout_percent__gte=0, rollout_percent__lte=100),
                name="segment_rollout_percent_0_100",
            ),
            models.CheckConstraint(condition=models.Q(slug__regex=SLUG_PATTERN), name="segment_slug_format"),
        ]

    def __str__(self) -> str:
        return self.slug


class MembershipQuerySet(models.QuerySet):
    def active(self) -> "MembershipQuerySet":
        """Memberships that count now, by the database's clock."""
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=Now()))


class Membership(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual"
        ROLLOUT = "rollout"

    # No single-column indexes: (user, segment) unique and (segment, user) cover both lookups.
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    added_at = models.DateTimeField(db_default=Now(), editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "segment"], name="membership_unique_user_segment"),
            models.CheckConstraint(
                condition=models.Q(source__in=["manual", "rollout"]), name="membership_source_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["segment", "user"], name="membership_segment_user"),
            models.Index(
                fields=["expires_at"], name="membership_expires_at", condition=models.Q(expires_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.segment_id}"


class HistoryEvent(models.Model):
    """One entry or exit of a user into a segment. Append-only; outlives users and segments.

    The table is range-partitioned by `at`, a partition a month (migration 0006,
    services/history_partitions.py). Its SQL primary key is (id, at), as a partitioned table's
    keys must hold `at`; Django keeps `id` as the pk: ids come from one sequence, so it is unique.
    """

    class Operation(models.TextChoices):
        ADDED = "added"
        REMOVED = "removed"

    class Source(models.TextChoices):
        API = "api"
        ADMIN = "admin"
        ROLLOUT = "rollout"
        TTL = "ttl"
        SEGMENT_DELETED = "segment_deleted"
        USER_DELETED = "user_deleted"
        IMPORT = "import"

    user_id = models.BigIntegerField()
    segment_slug = models.CharField(max_length=100)
    operation = models.CharField(max_length=7, choices=Operation.choices)
    source = models.CharField(max_length=15, choices=Source.choices)
    actor = models.CharField(max_length=150, blank=True, default="")
    at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(operation__in=["added", "removed"]), name="history_operation_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    source__in=["api", "admin", "rollout", "ttl", "segment_deleted", "user_deleted", "import"]
                ),
                name="history_source_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["user_id", "at"], name="history_user_at"),
            models.Index(fields=["segment_slug", "at"], name="history_segment_at"),
            models.Index(fields=["at"], name="history_at"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.operation} {self.segment_slug} at {self.at}"
