from rest_framework import serializers

from core.fields import MAX_USER_IDS, UserIdField
from core.serializers import StrictSerializer


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
