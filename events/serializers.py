from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import StrictSerializer
from events.services.webhooks import EVENT_TYPES, MAX_DESCRIPTION, MAX_URL
from segments.fields import MAX_SLUGS, SLUG_RE


class JSONBooleanField(serializers.BooleanField):
    """A JSON true or false only ("true" or 1 is refused)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    segments = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    failing_since = serializers.DateTimeField(allow_null=True)


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="whsec_…: shown only in this answer")


# JSON types only: the values are checked by `webhook_fields_check`, the one check for the admin too. These
# fields carry its rules into the OpenAPI document.
@extend_schema_field({"type": "string", "format": "uri", "maxLength": MAX_URL})
class UrlField(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "maxLength": MAX_DESCRIPTION})
class DescriptionField(serializers.CharField):
    pass


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": EVENT_TYPES}})
class EventTypeListField(serializers.ListField):
    child = serializers.CharField()


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "pattern": f"^{SLUG_RE.pattern}$"}, "maxItems": MAX_SLUGS}
)
class SlugTextListField(serializers.ListField):
    child = serializers.CharField()


class WebhookChangeSerializer(StrictSerializer):
    """PATCH: the fields to set; a missing field keeps its value. Empty lists mean all."""

    url = UrlField(required=False)
    description = DescriptionField(allow_blank=True, required=False)
    event_types = EventTypeListField(required=False)
    segments = SlugTextListField(required=False)
    enabled = JSONBooleanField(required=False)


class WebhookCreateSerializer(WebhookChangeSerializer):
    url = UrlField()
    enabled = None


class DeliverySerializer(serializers.Serializer):
    message_id = serializers.CharField(source="message.msg_id")
    attempt = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    duration_ms = serializers.IntegerField()
    at = serializers.DateTimeField()
