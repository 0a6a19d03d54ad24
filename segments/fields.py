"""Serializer fields for segment slugs (API.md), for every app that names segments."""

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_SLUGS = 1000


def parse_slug(value) -> str:
    if not isinstance(value, str) or not SLUG_RE.fullmatch(value):
        shown = value[:120] if isinstance(value, str) else value
        raise serializers.ValidationError(
            f"Invalid segment slug {shown!r}: 1-100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit."
        )
    return value


@extend_schema_field({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", "example": "AVITO_DISCOUNT_30"})
class SlugField(serializers.Field):
    def to_internal_value(self, data) -> str:
        return parse_slug(data)

    def to_representation(self, value) -> str:
        return value


class SlugListField(serializers.ListField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("child", SlugField())
        kwargs.setdefault("max_length", MAX_SLUGS)
        super().__init__(**kwargs)
