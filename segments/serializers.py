from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import JSONIntegerField, JSONNumberField, QueryIntegerField, UserIdField
from core.serializers import StrictSerializer
from segments.fields import SlugField, SlugListField
from segments.services.memberships import MAX_TTL_SECONDS, AddItem

RULE_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": 'A condition tree over user attributes (docs/api.md, Rules): {"all"|"any": [node, ...]},'
    ' {"not": node}, or {"attribute", "op", "value"}; null for no rule',
    "example": {
        "all": [
            {"attribute": "city", "op": "in", "value": ["Moscow", "Saint Petersburg"]},
            {"attribute": "app_version", "op": "version_gte", "value": "6.2"},
        ]
    },
}


@extend_schema_field(RULE_SCHEMA)
class RuleField(serializers.JSONField):
    """A segment's rule as sent: checked by rule_compile when it is saved (or previewed)."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)


PERCENT = {"max_digits": 5, "decimal_places": 2, "min_value": 0, "max_value": 100, "coerce_to_string": False}


class SegmentSerializer(serializers.Serializer):
    slug = serializers.CharField()
    description = serializers.CharField()
    rollout_percent = serializers.DecimalField(**PERCENT)
    rule = RuleField()
    member_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SegmentCreateSerializer(StrictSerializer):
    slug = SlugField()
    description = serializers.CharField(max_length=10_000, allow_blank=True, required=False, default="")
    rollout_percent = JSONNumberField(**PERCENT, required=False)
    rule = RuleField(required=False)


class SegmentChangeSerializer(StrictSerializer):
    """PUT and PATCH: the fields to set; a missing field keeps its value."""

    description = serializers.CharField(max_length=10_000, allow_blank=True, required=False)
    rollout_percent = JSONNumberField(**PERCENT, required=False)
    rule = RuleField(required=False)


class RulePreviewRequestSerializer(StrictSerializer):
    rule = RuleField()


class RulePreviewSerializer(serializers.Serializer):
    matching = serializers.IntegerField()
    would_add = serializers.IntegerField()
    would_remove = serializers.IntegerField()
    sample_user_ids = serializers.ListField(child=serializers.IntegerField())


class ExclusionSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()


class ExplanationSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    segment = serializers.CharField()
    member = serializers.BooleanField()
    source = serializers.CharField(allow_null=True)
    added_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    rule_matches = serializers.BooleanField(allow_null=True)
    bucket = serializers.IntegerField()
    in_rollout = serializers.BooleanField()
    excluded = serializers.BooleanField()


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    added_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()


class RolloutRequestSerializer(StrictSerializer):
    percent = JSONNumberField(**PERCENT)
    dry_run = serializers.BooleanField(required=False, default=False)


class RolloutResultSerializer(serializers.Serializer):
    slug = serializers.CharField()
    percent = serializers.DecimalField(**PERCENT)
    added = serializers.IntegerField()
    removed = serializers.IntegerField()


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "example": "AVITO_DISCOUNT_30"},
            {
                "type": "object",
                "required": ["slug"],
                "properties": {
                    "slug": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_TTL_SECONDS},
                },
            },
        ]
    }
)
class AddItemField(serializers.Field):
    """An item of `add`: "SLUG", {"slug", "expires_at"} or {"slug", "ttl_seconds"}."""

    def to_internal_value(self, data) -> AddItem:
        if isinstance(data, str):
            return AddItem(slug=SlugField().to_internal_value(data))
        item = AddItemObjectSerializer(data=data)
        item.is_valid(raise_exception=True)
        return AddItem(**item.validated_data)

    def to_representation(self, value):
        return value.slug


class AddItemObjectSerializer(StrictSerializer):
    slug = SlugField()
    expires_at = serializers.DateTimeField(required=False)
    ttl_seconds = JSONIntegerField(required=False, min_value=1, max_value=MAX_TTL_SECONDS)

    def validate(self, attrs):
        if "expires_at" in attrs and "ttl_seconds" in attrs:
            raise serializers.ValidationError("Give expires_at or ttl_seconds, not both.")
        return attrs


class MembershipsPatchSerializer(StrictSerializer):
    """`add`, `remove` or both. A body with neither (an empty one, or one a client lost) is a 400,
    never a successful no-op."""

    add = serializers.ListField(child=AddItemField(), required=False, max_length=1000)
    remove = SlugListField(required=False)

    def validate(self, attrs):
        if "add" not in attrs and "remove" not in attrs:
            raise serializers.ValidationError({"add": ["Give add, remove or both."]})
        attrs = {"add": [], "remove": [], **attrs}
        both = sorted({item.slug for item in attrs["add"]} & set(attrs["remove"]))
        if both:
            raise serializers.ValidationError(f"Segments both added and removed: {', '.join(both)}")
        return attrs


class MembershipsChangeSerializer(serializers.Serializer):
    user_id = UserIdField()
    added = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    segments = serializers.ListField(child=serializers.CharField())


class ImportRequestSerializer(StrictSerializer):
    """The query of an import: how to apply the file."""

    mode = serializers.ChoiceField(choices=["add", "remove", "replace"], required=False, default="add")
    ttl_seconds = QueryIntegerField(min_value=1, max_value=MAX_TTL_SECONDS, required=False, default=None)
    register = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Register the listed users who are not registered yet (add and replace); by default they are "
        "skipped and counted",
    )

    def validate(self, data):
        if data["register"] and data["mode"] == "remove":
            raise serializers.ValidationError({"register": ["Only with mode add or replace: remove registers nobody."]})
        return data


class AttributeImportRequestSerializer(StrictSerializer):
    """The query of an attribute import: how to apply the file."""

    mode = serializers.ChoiceField(choices=["merge", "replace"], required=False, default="merge")
    register = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Register the listed users who are not registered yet (the default); false: they are skipped "
        "and counted",
    )


class InvalidLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line number in the file; for JSON, the item's number in user_ids")
    error = serializers.CharField()


class _CountField(serializers.IntegerField):
    """A count the import's kind keeps, null for the other kind's (Import.count)."""

    def __init__(self, **kwargs):
        super().__init__(source="*", allow_null=True, read_only=True, **kwargs)

    def to_representation(self, current):
        return current.count(self.field_name)


class ImportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=["members", "attributes"], help_text="members: a segment's; attributes: users' attributes"
    )
    segment = serializers.CharField(
        source="segment_slug", allow_null=True, help_text="The segment's slug; null for an attribute import"
    )
    mode = serializers.ChoiceField(
        choices=["add", "remove", "replace", "merge"],
        source="shown_mode",
        help_text="add, remove, replace (members); merge, replace (attributes)",
    )
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    total = serializers.IntegerField(allow_null=True, help_text="Data lines in the file; null until checked")
    done = serializers.IntegerField(help_text="Data lines applied so far")
    added = _CountField(help_text="Members added (members; null for attributes)")
    removed = _CountField(help_text="Members removed (members; null for attributes)")
    already_member = _CountField(help_text="Listed users already members (members; null for attributes)")
    created = _CountField(help_text="Users registered by the import (attributes; null for members)")
    updated = _CountField(
        help_text="Registered users whose attributes were written, changed or not (attributes; null for members)"
    )
    entered = _CountField(help_text="User–segment pairs joined by rule (attributes; null for members)")
    left = _CountField(help_text="User–segment pairs left by rule (attributes; null for members)")
    unknown_users = serializers.IntegerField(help_text="Listed users not registered, skipped")
    unknown_user_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="The first 20 unknown users, in the file's order"
    )
    register = serializers.BooleanField(help_text="Whether unknown users are registered")
    registered = serializers.IntegerField(help_text="Users the import registered")
    invalid_lines = InvalidLineSerializer(many=True, help_text="The first 20 invalid lines")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.SerializerMethodField()

    def to_representation(self, current):
        shown = super().to_representation(current)
        shown["segment"] = current.segment_slug or None
        return shown

    def get_error(self, current) -> str | None:
        return current.error or None
