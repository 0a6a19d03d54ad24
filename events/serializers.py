from rest_framework import serializers

from core.fields import SlugListField
from core.serializers import StrictSerializer
from events.services.webhooks import EVENT_TYPES


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


class WebhookChangeSerializer(StrictSerializer):
    """PATCH: the fields to set; a missing field keeps its value. Empty lists mean all."""

    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    event_types = serializers.ListField(child=serializers.ChoiceField(EVENT_TYPES), max_length=10, required=False)
    segments = SlugListField(required=False)
    enabled = JSONBooleanField(required=False)


class WebhookCreateSerializer(WebhookChangeSerializer):
    url = serializers.URLField(max_length=2000)
    enabled = None


class DeliverySerializer(serializers.Serializer):
    message_id = serializers.CharField(source="message.msg_id")
    attempt = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    duration_ms = serializers.IntegerField()
    at = serializers.DateTimeField()
