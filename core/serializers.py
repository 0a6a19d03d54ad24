"""Serializers shared by every app: the problem body and a base that refuses unknown fields."""

import difflib

from django.http import QueryDict
from rest_framework import serializers

# Unknown fields of one body compared with the known ones (a 1 MiB body holds 100,000 names; the rest are
# refused without a suggestion), and the longest name compared (no field's name is near it).
MAX_SUGGESTED_FIELDS = 20
MAX_SUGGESTED_NAME = 100


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so that a typo is a 400 rather than silently ignored; the refusal names
    the known field it is closest to."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [unknown_field(name, self.fields, index < MAX_SUGGESTED_FIELDS)]
                        for index, name in enumerate(unknown)
                    }
                )
        return super().to_internal_value(data)


def unknown_field(name: str, known, suggest: bool = True) -> str:
    """The message refusing field `name`: with the closest of the `known` names, if one is close enough."""
    closest = closest_name(name, list(known)) if suggest and len(name) <= MAX_SUGGESTED_NAME else None
    return f"Unknown field; did you mean `{closest}`?" if closest else "Unknown field."


def closest_name(name: str, known: list[str]) -> str | None:
    """The known name `name` is most likely a typo or a shortening of: the closest by difflib (`rollout` ->
    `rollout_percent`), else the one it begins (`desc` -> `description`), else one with a word close to it
    (`ttl` -> `ttl_seconds`, `percent` -> `rollout_percent`); None when none is."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return close[0]
    longer = [field for field in known if field.startswith(name)]
    if len(longer) == 1:  # a shortening: `desc` -> `description`
        return longer[0]
    words = {word: field for field in known for word in field.split("_")[::-1] if word}
    close = difflib.get_close_matches(name, list(words), n=1, cutoff=0.8)
    return words[close[0]] if close else None


class ProblemSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.CharField()


PROBLEM_STATUSES = {
    400: "Invalid input (malformed_json, validation_error)",
    401: "No or unknown API token (not_authenticated)",
    403: "Read-only token on a write (permission_denied)",
    404: "Unknown user, segment or path",
    409: "The segment exists (segment_exists)",
    411: "A chunked body, without Content-Length (length_required)",
    413: "Body over 1 MiB, or an import over 200 MiB or 10,000,000 lines (payload_too_large), or a report over its"
    " row cap (report_too_large)",
    415: "Body is not JSON (unsupported_media_type)",
    422: "An Idempotency-Key used before with another request (idempotency_key_reused)",
    429: "Too many requests with this token (throttled); Retry-After says when to retry",
    503: "The imports waiting for the worker are at their cap (import_queue_full; Retry-After says when to retry),"
    " or storage or the database cannot take the request (service_unavailable)",
}


def problems(*statuses: int) -> dict:
    """`responses` entries for @extend_schema: one problem+json response per status."""
    from drf_spectacular.utils import OpenApiResponse

    return {
        (status, "application/problem+json"): OpenApiResponse(ProblemSerializer, description=PROBLEM_STATUSES[status])
        for status in statuses
    }


def request_example(name: str, value: dict | str, media_type: str = "application/json"):
    """An `examples` entry for @extend_schema: a request body Swagger UI's "Try it out" fills in (in place of
    one it would make up from the fields' types). Each must be a request the API accepts: the schema test
    (tests/test_schema_examples.py) sends every one to a live server. `media_type` is the body's in the
    schema (`*/*` for the seed API, which reads JSON whatever the Content-Type)."""
    from drf_spectacular.utils import OpenApiExample

    return OpenApiExample(name, value=value, request_only=True, media_type=media_type)


def validated(serializer_class, data) -> dict:
    """Validate request data with an input serializer; a ValidationError becomes a 400 problem.

    A query string (a QueryDict) may give each parameter once: `?mode=add&mode=replace` is a 400, where
    taking either value would guess (and the last one may be the destructive one)."""
    if isinstance(data, QueryDict):
        repeated = sorted(name for name, values in data.lists() if len(values) > 1)
        if repeated:
            raise serializers.ValidationError({name: ["Given more than once."] for name in repeated})
        data = data.dict()
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
