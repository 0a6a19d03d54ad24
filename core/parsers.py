"""JSON parsing that refuses oversized, malformed, non-UTF-8 and absurdly nested bodies with a 4xx."""

import json

from django.conf import settings
from rest_framework import exceptions, parsers

from core.errors import PayloadTooLarge
from core.middleware import body_limit


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _object(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) < len(pairs):
        seen = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {twice[:100]!r} appears twice in one object")
    return data


def loads(text: str):
    """A JSON text as the API takes it: no NaN or Infinity, no key twice in one object (which
    value would count is ambiguous); raises ValueError otherwise."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_object)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = body_limit(request.path) if request is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit // 1048576} MiB.")
        if not raw.strip():
            raise exceptions.ParseError("JSON parse error - the request body is empty.")
        try:
            return loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise exceptions.ParseError("JSON parse error - the body is not UTF-8.") from None
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {str(exc)[:200]}") from None


class AnyContentTypeJSONParser(JSONParser):
    """For the seed-compatible endpoints: the old service read JSON whatever the Content-Type said."""

    media_type = "*/*"
