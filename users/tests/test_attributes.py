"""Users' attributes: the contract's limits with the path of each refusal, the merge patch, and the
stored row with the rule document the database derives from it (API.md, "Segments defined by rules")."""

import json
from decimal import Decimal

import pytest
from django.db import connection

from core.errors import ValidationFailed
from segments.attributes import attributes_clean, attributes_merge
from users.models import User, UserAttributes
from users.services import user_delete


def _errors(call, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as raised:
        call(**kwargs)
    return raised.value.extra["errors"]


def test_attributes_clean__every_kind_of_value__kept_and_nulls_left_out():
    attributes = {
        "city": "Moscow",
        "age": 30,
        "score": -1.5,
        "premium": False,
        "tags": ["vip", ""],
        "empty": [],
        "gone": None,
        "name": "é" * 1000,
    }
    cleaned = attributes_clean(attributes=attributes)
    assert cleaned == {key: value for key, value in attributes.items() if key != "gone"}


@pytest.mark.parametrize(
    ("attributes", "path", "message"),
    [
        ({"City": "x"}, "attributes.City", "A key is 1 to 64 characters"),
        ({"1city": "x"}, "attributes.1city", "A key is"),
        ({"a" * 65: "x"}, "attributes." + "a" * 65, "A key is"),
        ({"bad-key": None}, "attributes.bad-key", "A key is"),
        ({"city": "x" * 1001}, "attributes.city", "at most 1,000 characters"),
        ({"city": "a\x00b"}, "attributes.city", "NUL"),
        ({"city": "\ud800"}, "attributes.city", "lone surrogates"),
        ({"score": float("nan")}, "attributes.score", "A finite number"),
        ({"score": float("inf")}, "attributes.score", "A finite number"),
        ({"address": {"city": "x"}}, "attributes.address", "Expected a string"),
        ({"tags": ["a", 1]}, "attributes.tags[1]", "strings only"),
        ({"tags": ["a", ["b"]]}, "attributes.tags[1]", "strings only"),
        ({"tags": ["ok", "x" * 1001]}, "attributes.tags[1]", "at most 1,000 characters"),
        ({"tags": ["x"] * 101}, "attributes.tags", "at most 100 strings"),
        ({f"k{i}": i for i in range(101)}, "attributes", "At most 100 keys"),
        ({f"k{i}": "x" * 200 for i in range(90)}, "attributes", "At most 16,384 bytes"),
        (["city"], "attributes", "Expected an object"),
    ],
)
def test_attributes_clean__out_of_the_contract__refused_at_its_path(attributes, path, message):
    errors = _errors(attributes_clean, attributes=attributes)
    assert list(errors) == [path]
    assert message in errors[path][0]


def test_attributes_clean__limits__reached_exactly_accepted():
    at_size = {f"k{i:02}": "x" * 1000 for i in range(16)}
    at_size["pad"] = "x" * (16 * 1024 - len(json.dumps(at_size, separators=(",", ":"))) - len(',"pad":""'))
    assert len(json.dumps(at_size, separators=(",", ":"))) == 16 * 1024
    assert attributes_clean(attributes=at_size) == at_size
    assert len(attributes_clean(attributes={f"k{i}": i for i in range(100)})) == 100
    with pytest.raises(ValidationFailed):
        attributes_clean(attributes={**at_size, "pad": at_size["pad"] + "x"})


def test_attributes_clean__size__counts_utf8_bytes_of_compact_json():
    # 9,000 characters of 'ж' are 18,000 bytes: over 16 KiB in bytes, not in characters
    errors = _errors(attributes_clean, attributes={f"k{i}": "ж" * 1000 for i in range(9)})
    assert "At most 16,384 bytes" in errors["attributes"][0]


def test_attributes_clean__several_bad_values__each_named_under_the_callers_prefix():
    errors = _errors(attributes_clean, attributes={"a": {}, "b": "ok", "c": [1]}, path="users[2].attributes")
    assert set(errors) == {"users[2].attributes.a", "users[2].attributes.c[0]"}


def test_attributes_merge__rfc7396__sets_replaces_and_deletes():
    current = {"city": "Moscow", "tags": ["a", "b"], "age": 30}
    merged = attributes_merge(current=current, patch={"city": "Kazan", "tags": ["c"], "age": None, "new": True})
    assert merged == {"city": "Kazan", "tags": ["c"], "new": True}
    assert current == {"city": "Moscow", "tags": ["a", "b"], "age": 30}
    assert attributes_merge(current=current, patch={}) == current
    assert attributes_merge(current=current, patch={"missing": None}) == current


def test_attributes_merge__result_over_the_limits__refused():
    current = {f"k{i}": i for i in range(100)}
    assert "At most 100 keys" in _errors(attributes_merge, current=current, patch={"k100": 1})["attributes"][0]
    # a patch of more than 100 keys that deletes as many as it adds is fine
    patch = {f"k{i}": None for i in range(50)} | {f"n{i}": i for i in range(50)}
    assert len(attributes_merge(current=current, patch=patch)) == 100
    big = {"a": "x" * 1000}
    errors = _errors(attributes_merge, current={f"k{i}": "x" * 1000 for i in range(16)}, patch=big)
    assert "bytes" in errors["attributes"][0]


def test_attributes_merge__bad_patch__refused_at_its_path():
    errors = _errors(attributes_merge, current={}, patch={"Bad": None, "ok": {"x": 1}})
    assert set(errors) == {"attributes.Bad", "attributes.ok"}
    assert _errors(attributes_merge, current={}, patch="x") == {"attributes": ["Expected an object of attributes."]}


def _document(attributes: dict) -> dict:
    User.objects.get_or_create(id=7)
    UserAttributes.objects.update_or_create(user_id=7, defaults={"attributes": attributes})
    return UserAttributes.objects.get(user_id=7).document


@pytest.mark.django_db
def test_document__each_type__under_its_member():
    document = _document({"city": "Moscow", "age": 30, "premium": True, "tags": ["vip"]})
    assert document == {"city": {"s": "Moscow"}, "age": {"n": 30}, "premium": {"b": True}, "tags": {"l": ["vip"]}}
    assert _document({}) == {}


@pytest.mark.django_db
def test_document__versions__keys_that_sort_numerically():
    versions = ["6.9", "6.10.0", "6.2", "6.2.0", "006.02", "10", "0", "0.0.1", "6.10.1"]
    document = _document({f"v{i}": version for i, version in enumerate(versions)})
    key = {version: document[f"v{i}"]["v"] for i, version in enumerate(versions)}
    assert key["6.2"] == key["6.2.0"] == key["006.02"]

    def number(version: str) -> list[int]:
        parts = [int(part) for part in version.split(".")]
        return parts + [0] * (5 - len(parts))

    for a in versions:
        for b in versions:
            assert (key[a] < key[b], key[a] == key[b]) == (number(a) < number(b), number(a) == number(b)), (a, b)
    assert "v" not in _document({"a": "6.2-beta"})["a"]
    not_versions = _document({"a": "", "b": "6.", "c": ".6", "d": "v6", "e": "6..2", "f": "٦.٢"})
    assert all("v" not in value for value in not_versions.values())


@pytest.mark.django_db
def test_document__timestamps__epoch_seconds_whatever_the_offset():
    document = _document(
        {
            "utc": "2024-01-15T09:30:00Z",
            "plus": "2024-01-15T12:30:00+03:00",
            "minus": "2024-01-15T07:00:00.25-02:30",
            "lower": "2024-01-15t09:30:00z",
            "leap": "2016-12-31T23:59:60Z",
        }
    )
    assert document["utc"]["t"] == document["plus"]["t"] == document["lower"]["t"] == 1705311000
    assert Decimal(str(document["minus"]["t"])) == Decimal("1705311000.25")
    assert document["leap"]["t"] == 1483228800


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00",
        "2024-01-01",
    ],
)
def test_document__not_a_timestamp__a_string_alone(value):
    assert _document({"at": value}) == {"at": {"s": value}}


@pytest.mark.django_db
def test_document__leap_day__a_timestamp():
    assert _document({"at": "2024-02-29T00:00:00Z"})["at"]["t"] == 1709164800


@pytest.mark.django_db
def test_attributes_row__user_deleted__deleted_with_it():
    User.objects.create(id=8)
    UserAttributes.objects.create(user_id=8, attributes={"city": "Moscow"})
    user_delete(user_id=8, actor="tests")
    assert not UserAttributes.objects.filter(user_id=8).exists()
    with connection.cursor() as cursor:
        User.objects.create(id=9)
        UserAttributes.objects.create(user_id=9, attributes={})
        cursor.execute("DELETE FROM users_user WHERE id = 9")
    assert not UserAttributes.objects.filter(user_id=9).exists()
