from collections import Counter

from rest_framework import serializers

from core.fields import MAX_USER_IDS, UserIdField
from core.serializers import StrictSerializer
from segments.selectors import MAX_BATCH_USER_IDS

MAX_ATTRIBUTES_BATCH = 10_000


class UserMembershipSerializer(serializers.Serializer):
    segment = serializers.CharField(source="segment.slug")
    added_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()


class UserSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    memberships = UserMembershipSerializer(many=True)


class UsersRegisterSerializer(StrictSerializer):
    user_ids = serializers.ListField(child=UserIdField(), min_length=1, max_length=MAX_USER_IDS)


class UsersRegisterResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()


class UserSegmentsSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    segments = serializers.ListField(child=serializers.CharField())


class UsersSegmentsRequestSerializer(StrictSerializer):
    user_ids = serializers.ListField(child=UserIdField(), min_length=1, max_length=MAX_BATCH_USER_IDS)

    def validate_user_ids(self, user_ids: list[int]) -> list[int]:
        repeated = sorted(user_id for user_id, count in Counter(user_ids).items() if count > 1)
        if repeated:
            raise serializers.ValidationError(f"Repeated user ids: {', '.join(map(str, repeated[:20]))}.")
        return user_ids


class UsersSegmentsSerializer(serializers.Serializer):
    users = UserSegmentsSerializer(many=True)
    unknown_user_ids = serializers.ListField(child=serializers.IntegerField())


class AttributesSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    attributes = serializers.DictField()
    updated_at = serializers.DateTimeField(allow_null=True)


class AttributesWrittenSerializer(AttributesSerializer):
    entered = serializers.ListField(child=serializers.CharField())
    left = serializers.ListField(child=serializers.CharField())


class AttributesWriteSerializer(StrictSerializer):
    attributes = serializers.JSONField()  # checked by segments/attributes.py, with each bad key's path


class AttributesItemSerializer(StrictSerializer):
    user_id = UserIdField()
    attributes = serializers.JSONField()


class AttributesBatchSerializer(StrictSerializer):
    users = serializers.ListField(child=AttributesItemSerializer(), min_length=1, max_length=MAX_ATTRIBUTES_BATCH)
    mode = serializers.ChoiceField(choices=["merge", "replace"], required=False, default="merge")

    def validate_users(self, users: list[dict]) -> list[dict]:
        repeated = sorted(user_id for user_id, count in Counter(item["user_id"] for item in users).items() if count > 1)
        if repeated:
            raise serializers.ValidationError(f"Repeated user ids: {', '.join(map(str, repeated[:20]))}.")
        return users


class AttributesBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    entered = serializers.IntegerField()
    left = serializers.IntegerField()
