"""Serializer fields for the values every endpoint shares: user ids (API.md), JSON-only numbers, query integers."""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_USER_ID = 9223372036854775807
MAX_USER_IDS = 10_000


def parse_user_id(value) -> int:
    """An integer 1..2^63-1, given as a JSON integer or a string of digits; anything else is refused."""
    if isinstance(value, bool):
        raise serializers.ValidationError("A user id is an integer, not a boolean.")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        value = int(value)
    if not isinstance(value, int):
        raise serializers.ValidationError(f"A user id is an integer from 1 to {MAX_USER_ID}.")
    if not 1 <= value <= MAX_USER_ID:
        raise serializers.ValidationError(f"A user id is an integer from 1 to {MAX_USER_ID}.")
    return value


@extend_schema_field(OpenApiTypes.INT64)
class UserIdField(serializers.Field):
    default_error_messages = {"invalid": "A user id is an integer."}

    def to_internal_value(self, data) -> int:
        return parse_user_id(data)

    def to_representation(self, value) -> int:
        return int(value)


class JSONNumberField(serializers.DecimalField):
    """A v1 decimal such as `rollout_percent`: a JSON number only ("10.5" as a string is refused)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryIntegerField(serializers.IntegerField):
    """An integer in a query string: ASCII digits only (int() would also take `+5`, ` 5`, `1_000`,
    `5.0` and other scripts' digits such as `١٢`)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.isascii() or not data.isdigit():
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONIntegerField(serializers.IntegerField):
    """A v1 integer such as `ttl_seconds`: a JSON integer only (no string, no 10.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
