from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import UserIdField
from core.serializers import StrictSerializer
from reports.periods import month_parse, period_of
from segments.fields import SlugField

MONTH_SCHEMA = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{1,2}$", "example": "2023-08"}
BOOLEAN_HELP = "true/false, 1/0, yes/no, on/off; anything else is a 400"


@extend_schema_field(MONTH_SCHEMA)
class MonthField(serializers.Field):
    """`YYYY-MM` or `YYYY-M`, returned as a periods.Month."""

    def to_internal_value(self, data):
        try:
            return month_parse(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value) -> str:
        return str(value)


class PeriodFields:
    """Adds the two month fields and folds them into `period`; the names are attributes because
    `from` is a Python keyword and the seed API calls them `start_date` and `end_date`."""

    first_field, last_field = "from", "to"

    def get_fields(self):
        months = {
            self.first_field: MonthField(help_text="First month, inclusive (UTC)"),
            self.last_field: MonthField(required=False, help_text="Last month, inclusive; default: the first"),
        }
        return {**months, **super().get_fields()}

    def validate(self, attrs):
        try:
            attrs["period"] = period_of(attrs.pop(self.first_field), attrs.pop(self.last_field, None))
        except ValueError as exc:
            raise serializers.ValidationError({self.last_field: [str(exc)]}) from None
        return super().validate(attrs)


class PeriodQuerySerializer(PeriodFields, serializers.Serializer):
    pass


class HistoryCsvQuerySerializer(PeriodFields, serializers.Serializer):
    user_id = UserIdField(required=False)
    segment = SlugField(required=False)
    header = serializers.BooleanField(required=False, default=False, help_text=f"Add a header line: {BOOLEAN_HELP}")
    detail = serializers.BooleanField(required=False, default=False, help_text=f"Add source;actor: {BOOLEAN_HELP}")


class ReportRequestSerializer(PeriodFields, StrictSerializer):
    user_id = UserIdField(required=False)
    segment = SlugField(required=False)
    header = serializers.BooleanField(required=False, default=False)
    detail = serializers.BooleanField(required=False, default=False)


class ReportSerializer(serializers.Serializer):
    csv_url = serializers.URLField()
    rows = serializers.IntegerField()


class HistoryEventSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    segment = serializers.CharField(source="segment_slug")
    operation = serializers.CharField(help_text="added or removed")
    at = serializers.DateTimeField()
    source = serializers.CharField(help_text="api, admin, rollout, ttl, segment_deleted, user_deleted or import")
    actor = serializers.CharField()
