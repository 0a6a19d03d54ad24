from datetime import UTC, datetime

from django.db import models
from django.db.models.functions import Now

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# Every membership's expiry is before this instant. PostgreSQL stores far later ones (and 'infinity'), but
# Python's datetime ends with year 9999, so such a row could not be read back; the year of margin keeps every
# expiry readable and printable in any time zone. services/memberships.py expiry_problem() checks it for
# every way in; the database checks it too (membership_expires_at_range, migration 0010).
EXPIRES_BEFORE = datetime(9999, 1, 1, tzinfo=UTC)


class Segment(models.Model):
    slug = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    rollout_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)
    # The condition tree of API.md ("Segments defined by rules"), or None; its compiled form is SegmentRule,
    # apart so that a segment's events show the rule changing, not its compilation.
    rule = models.JSONField(null=True, blank=True)

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


class SegmentRule(models.Model):
    """A segment's rule compiled (segments/rules.py CompiledRule), written with the rule, read by automatic
    assignment (services/automatic.py). The row goes with its segment: the foreign key is ON DELETE CASCADE
    in the database (migration 0015)."""

    segment = models.OneToOneField(
        Segment, primary_key=True, on_delete=models.CASCADE, db_constraint=False, related_name="compiled_rule"
    )
    path = models.TextField()
    relative = models.BooleanField()
    matches_empty = models.BooleanField()

    def __str__(self) -> str:
        return f"rule of {self.segment_id}"


class Exclusion(models.Model):
    """A user that automatic assignment leaves out of a segment: an automatic member removed by hand, until a
    manual add or until the exclusion is deleted. Goes with its user and its segment (ON DELETE CASCADE in the
    database, migration 0015)."""

    user = models.ForeignKey(
        "users.User", on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="exclusions"
    )
    at = models.DateTimeField(db_default=Now(), editable=False)
    actor = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["segment", "user"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "user"], name="exclusion_unique_segment_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} excluded from {self.segment_id}"


class MembershipActive(models.Func):
    """Whether a membership with the expiry given counts now, by the database's clock:
    segments_membership_active, the one definition of "active" (migration 0013)."""

    function = "segments_membership_active"
    arity = 1
    output_field = models.BooleanField()


class MembershipQuerySet(models.QuerySet):
    def active(self) -> "MembershipQuerySet":
        """Memberships that count now, by the database's clock."""
        return self.filter(MembershipActive("expires_at"))


class Membership(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual"
        ROLLOUT = "rollout"
        RULE = "rule"

    # No single-column indexes: (user, segment) unique and (segment, user) cover both lookups.
    user = models.ForeignKey("users.User", on_delete=models.CASCADE, related_name="memberships", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    added_at = models.DateTimeField(db_default=Now(), editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "segment"], name="membership_unique_user_segment"),
            models.CheckConstraint(
                condition=models.Q(source__in=["manual", "rollout", "rule"]), name="membership_source_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__lt=EXPIRES_BEFORE), name="membership_expires_at_range"
            ),
        ]
        indexes = [
            models.Index(fields=["segment", "user"], name="membership_segment_user"),
            models.Index(
                fields=["expires_at"], name="membership_expires_at", condition=models.Q(expires_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.segment.slug}"


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
        RULE = "rule"

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
                    source__in=["api", "admin", "rollout", "ttl", "segment_deleted", "user_deleted", "import", "rule"]
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


class Import(models.Model):
    """A file of user ids to add to, remove from, or make the manual members of a segment.

    Received by the API, the admin or `import_members` into storage (`file_name`), then checked
    whole and applied in chunks by the worker (services/imports.py), which keeps the counts here.
    """

    class Mode(models.TextChoices):
        ADD = "add"
        REMOVE = "remove"
        REPLACE = "replace"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Kind(models.TextChoices):
        MEMBERS = "members"  # a segment's members (services/imports.py)
        ATTRIBUTES = "attributes"  # users' attributes (services/attribute_imports.py)

    # An attribute import has no segment: its segment_id is ATTRIBUTES_SEGMENT_ID (no segment has it) and
    # its slug "". It keeps its mode and counts in the columns a membership import has: mode `add` stands
    # for `merge` (ATTRIBUTE_MODES), and each count in the column ATTRIBUTE_COUNTS names.
    ATTRIBUTES_SEGMENT_ID = 0
    ATTRIBUTE_MODES = {"merge": "add", "replace": "replace"}  # as shown: as stored
    ATTRIBUTE_COUNTS = {"created": "registered", "updated": "added", "entered": "already_member", "left": "removed"}

    # No foreign key: a segment deleted during its import fails the import, which stays to be read.
    segment_id = models.BigIntegerField()
    segment_slug = models.CharField(max_length=100)
    mode = models.CharField(max_length=7, choices=Mode.choices, default=Mode.ADD)
    ttl_seconds = models.PositiveBigIntegerField(null=True, blank=True)  # up to MAX_TTL_SECONDS, over 2**31
    register = models.BooleanField(default=False)  # register the listed users who are not registered yet
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    actor = models.CharField(max_length=150)  # who started it: the token's name, or the admin user's
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    body_sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_bytes = models.BigIntegerField(default=0)  # the stored file's size: the queue's cap counts it while unfinished
    total = models.BigIntegerField(null=True, blank=True)  # user id lines in the file, once checked
    done = models.BigIntegerField(default=0)
    added = models.BigIntegerField(default=0)
    removed = models.BigIntegerField(default=0)
    already_member = models.BigIntegerField(default=0)
    unknown_users = models.BigIntegerField(default=0)
    unknown_user_ids = models.JSONField(default=list, blank=True)  # the first 20, in the file's order
    registered = models.BigIntegerField(default=0)  # users the import registered (`register`)
    invalid_lines = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")  # why it failed; "" otherwise
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    checked_at = models.DateTimeField(null=True, blank=True)  # the clock expiries were checked against
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["actor", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="import_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=models.Q(mode__in=["add", "remove", "replace"]), name="import_mode_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed"]), name="import_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["status"], name="import_unfinished", condition=models.Q(status__in=["queued", "running"])
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.ATTRIBUTES:
            return f"import {self.pk} of attributes ({self.shown_mode}, {self.status})"
        return f"import {self.pk} of {self.segment_slug} ({self.mode}, {self.status})"

    @property
    def kind(self) -> str:
        return self.Kind.ATTRIBUTES if self.segment_id == self.ATTRIBUTES_SEGMENT_ID else self.Kind.MEMBERS

    @property
    def shown_mode(self) -> str:
        """The mode as the API names it (`merge` for an attribute import's `add`)."""
        if self.kind == self.Kind.ATTRIBUTES:
            return next(shown for shown, stored in self.ATTRIBUTE_MODES.items() if stored == self.mode)
        return self.mode

    def count(self, name: str) -> int | None:
        """A count of an attribute import (ATTRIBUTE_COUNTS) or of a membership import (its column), None
        for a count the import's kind does not keep."""
        attributes = self.kind == self.Kind.ATTRIBUTES
        if name in self.ATTRIBUTE_COUNTS:
            return getattr(self, self.ATTRIBUTE_COUNTS[name]) if attributes else None
        return None if attributes else getattr(self, name)
