"""Users' attributes as the contract has them (what rules read): checking a write and applying a merge patch.

Attributes are a JSON object: at most MAX_KEYS keys and MAX_BYTES bytes of compact UTF-8 JSON; a key
matches KEY; a value is a string of at most MAX_STRING characters, a finite number, a boolean, or a
list of at most MAX_LIST such strings. Every refusal is a ValidationFailed whose fields are paths
(`attributes.city`, `attributes.tags[3]`), under a prefix the caller names (`users[2].attributes`).
"""

import json
import math
import re

from core.errors import ValidationFailed

MAX_KEYS = 100
MAX_BYTES = 16 * 1024
MAX_STRING = 1000
MAX_LIST = 100
KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")

_KEY_RULE = "A key is 1 to 64 characters a-z, 0-9 and _, starting with a letter."
_VALUE_RULE = (
    f"Expected a string (at most {MAX_STRING:,} characters), a finite number, a boolean,"
    f" or a list of at most {MAX_LIST} such strings."
)


def text_error(value: str) -> str | None:
    """Why a string cannot be stored (too long, a NUL, a lone surrogate), or None when it can."""
    if len(value) > MAX_STRING:
        return f"A string of at most {MAX_STRING:,} characters; this one has {len(value):,}."
    if "\x00" in value:
        return "A string without the NUL character (\\u0000)."
    try:
        value.encode()
    except UnicodeEncodeError:
        return "A string of valid Unicode (no lone surrogates)."
    return None


def _value_errors(value, path: str) -> dict[str, list[str]]:
    if isinstance(value, str):
        error = text_error(value)
        return {path: [error]} if error else {}
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {} if math.isfinite(value) else {path: ["A finite number."]}
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            return {path: [f"A list of at most {MAX_LIST} strings; this one has {len(value):,}."]}
        errors = {}
        for index, item in enumerate(value):
            error = text_error(item) if isinstance(item, str) else "A list holds strings only."
            if error:
                errors[f"{path}[{index}]"] = [error]
        return errors
    return {path: [_VALUE_RULE]}


def _checked(attributes, path: str, *, patch: bool) -> dict:
    """The object with its null values left out; refuses a key or a value the contract does not allow."""
    if not isinstance(attributes, dict):
        raise ValidationFailed({path: ["Expected an object of attributes."]})
    if len(attributes) > MAX_KEYS and not patch:
        raise ValidationFailed({path: [f"At most {MAX_KEYS} keys; this object has {len(attributes):,}."]})
    errors: dict[str, list[str]] = {}
    for key, value in attributes.items():
        key_path = f"{path}.{key[:100]}"
        if not KEY.fullmatch(key):
            errors[key_path] = [_KEY_RULE]
        elif value is not None:
            errors.update(_value_errors(value, key_path))
    if errors:
        raise ValidationFailed(errors)
    return {key: value for key, value in attributes.items() if value is not None}


def _sized(attributes: dict, path: str) -> dict:
    if len(attributes) > MAX_KEYS:
        raise ValidationFailed({path: [f"At most {MAX_KEYS} keys; the result would have {len(attributes):,}."]})
    size = len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_BYTES:
        raise ValidationFailed({path: [f"At most {MAX_BYTES:,} bytes of compact JSON; these are {size:,}."]})
    return attributes


def attributes_clean(*, attributes, path: str = "attributes") -> dict:
    """The attributes a replacing write stores: `attributes` checked, its null values left out."""
    return _sized(_checked(attributes, path, patch=False), path)


def attributes_merge(*, current: dict, patch, path: str = "attributes") -> dict:
    """The attributes after a JSON merge patch (RFC 7396) of `current`, checked.

    A null deletes its key; any other value replaces the key's (a list as a whole: values hold no
    objects, so the merge never goes deeper than the top level). The result is held to the limits.
    """
    _checked(patch, path, patch=True)
    merged = {**current, **patch}
    return _sized({key: value for key, value in merged.items() if value is not None}, path)
