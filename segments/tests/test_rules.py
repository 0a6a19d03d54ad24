"""Segment rules (API.md, "Segments defined by rules"): every operator evaluated in PostgreSQL through the
compiled form, for one user and set-based alike; the grammar's refusals with their paths; the readable text;
the GIN index."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from core.errors import ValidationFailed
from segments.rules import CompiledRule, rule_compile, rule_predicate, rule_predicate_of, rule_text
from users.models import User, UserAttributes

pytestmark = pytest.mark.django_db

PROFILES = {
    1: {
        "city": "Moscow",
        "age": 30,
        "premium": True,
        "tags": ["vip", "beta"],
        "app_version": "6.10.0",
        "signed_up": "2024-01-15T10:00:00Z",
        "name": "Anna Petrova",
    },
    2: {
        "city": "Saint Petersburg",
        "age": 17.5,
        "premium": False,
        "tags": ["beta"],
        "app_version": "6.2",
        "signed_up": "2024-01-15T12:30:00+03:00",  # 09:30Z, before user 1
        "name": "Boris",
    },
    # every attribute of another type than its operators take
    3: {
        "city": ["Moscow"],
        "age": "30",
        "premium": "true",
        "tags": "vip",
        "app_version": "6.2.0",
        "signed_up": 1705312800,
        "name": ["Anna"],
    },
    4: {
        "city": "Kazan",
        "age": 45,
        "app_version": "6.9",
        "signed_up": "2023-12-31T23:00:00-02:00",  # 2024-01-01T01:00Z
        "name": 'Ivan "the" \\ Terrible ☃.*',
    },
    5: {"app_version": "6.2-beta", "signed_up": "2024-02-30T00:00:00Z"},  # no version, no timestamp
    6: {},
    7: None,  # no attributes row
}
EVERYONE = set(PROFILES)


@pytest.fixture
def profiles(db):
    User.objects.bulk_create([User(id=user_id) for user_id in PROFILES])
    UserAttributes.objects.bulk_create(
        [UserAttributes(user_id=user_id, attributes=value) for user_id, value in PROFILES.items() if value is not None]
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _matching(rule: CompiledRule, now: datetime | None) -> set[int]:
    """Users the rule matches, asked for each user, then set-based; the answers must agree, and with the scan of
    attributes rows alone when the rule does not match a user without attributes."""
    predicate, params = rule_predicate(rule, document="coalesce(a.document, '{}')", now=now)
    users = "users_user u LEFT JOIN users_userattributes a ON a.user_id = u.id"
    one_by_one = set()
    with connection.cursor() as cursor:
        for user_id in PROFILES:
            cursor.execute(f"SELECT {predicate} FROM {users} WHERE u.id = %s", [*params, user_id])
            verdict = cursor.fetchone()[0]
            assert verdict in (True, False), (user_id, verdict)
            if verdict:
                one_by_one.add(user_id)
        cursor.execute(f"SELECT u.id FROM {users} WHERE {predicate}", params)
        set_based = {row[0] for row in cursor.fetchall()}
        cursor.execute(f"SELECT count(*) FROM {users} WHERE {predicate}", params)
        count = cursor.fetchone()[0]
        own, own_params = rule_predicate(rule, document="document", now=now)
        cursor.execute(f"SELECT user_id FROM users_userattributes WHERE {own}", own_params)
        attributes_rows_only = {row[0] for row in cursor.fetchall()}
        # The form that reads the path from a column (many segments' rules in one statement) agrees.
        of_column, of_params = rule_predicate_of("r.path", document="coalesce(a.document, '{}')", now=now)
        cursor.execute(
            f"SELECT u.id FROM {users} CROSS JOIN (SELECT %s::jsonpath AS path) r WHERE {of_column}",
            [rule.path, *of_params],
        )
        from_column = {row[0] for row in cursor.fetchall()}
    assert one_by_one == set_based == from_column
    assert count == len(set_based)
    assert (7 in set_based) is rule.matches_empty  # user 7 has no attributes row
    if not rule.matches_empty:
        assert attributes_rows_only == set_based
    return set_based


def _c(attribute: str, op: str, *value) -> dict:
    return {"attribute": attribute, "op": op, **({"value": value[0]} if value else {})}


NOW = "2024-02-10T10:00:00Z"
CASES = [
    # (rule, now, users matching)
    (_c("city", "eq", "Moscow"), None, {1}),
    (_c("age", "eq", 30), None, {1}),
    (_c("age", "eq", 30.0), None, {1}),
    (_c("age", "eq", "30"), None, {3}),
    (_c("premium", "eq", True), None, {1}),
    (_c("premium", "eq", False), None, {2}),
    (_c("name", "eq", 'Ivan "the" \\ Terrible ☃.*'), None, {4}),
    (_c("city", "ne", "Moscow"), None, {2, 4}),
    (_c("age", "ne", 30), None, {2, 4}),
    (_c("premium", "ne", True), None, {2}),
    (_c("city", "in", ["Moscow", "Saint Petersburg"]), None, {1, 2}),
    (_c("age", "in", [30, 45]), None, {1, 4}),
    (_c("age", "in", ["30"]), None, {3}),
    (_c("city", "not_in", ["Moscow"]), None, {2, 4}),
    (_c("age", "not_in", [30, 17.5]), None, {4}),
    (_c("age", "lt", 30), None, {2}),
    (_c("age", "lte", 30), None, {1, 2}),
    (_c("age", "gt", 30), None, {4}),
    (_c("age", "gte", 17.5), None, {1, 2, 4}),
    (_c("age", "gt", -1e20), None, {1, 2, 4}),
    (_c("name", "contains", "Petrov"), None, {1}),
    (_c("name", "contains", ".*"), None, {4}),
    (_c("name", "contains", '"the" \\'), None, {4}),
    (_c("name", "contains", "anna"), None, set()),
    (_c("name", "starts_with", "Anna"), None, {1}),
    (_c("city", "starts_with", "Mos"), None, {1}),
    (_c("tags", "has", "vip"), None, {1}),
    (_c("tags", "has", "beta"), None, {1, 2}),
    (_c("city", "exists"), None, {1, 2, 3, 4}),
    (_c("premium", "exists"), None, {1, 2, 3}),
    (_c("city", "not_exists"), None, {5, 6, 7}),
    (_c("signed_up", "before", "2024-01-15T10:00:00Z"), None, {2, 4}),
    (_c("signed_up", "after", "2024-01-15T12:00:00+03:00"), None, {1, 2}),
    (_c("signed_up", "before", "2024-01-01T00:00:00-02:00"), None, {4}),
    (_c("signed_up", "after", "2024-01-15T09:30:00.5Z"), None, {1}),
    (_c("signed_up", "after", "-P30D"), NOW, {1, 2}),
    (_c("signed_up", "after", "-P30D"), "2024-02-14T09:45:00Z", {1}),
    (_c("signed_up", "after", "-P4W2DT23H45M"), "2024-02-14T09:45:00Z", {1, 2}),
    (_c("signed_up", "before", "-PT20S"), "2024-01-15T10:00:10Z", {2, 4}),
    (_c("signed_up", "before", "-PT20S"), "2024-01-15T10:00:30Z", {1, 2, 4}),
    (_c("signed_up", "before", "P7D"), "2024-01-10T00:00:00Z", {1, 2, 4}),
    (_c("signed_up", "after", "P0D"), "2024-01-15T09:45:00Z", {1}),
    (_c("app_version", "version_gte", "6.2"), None, {1, 2, 3, 4}),
    (_c("app_version", "version_gte", "6.10"), None, {1}),
    (_c("app_version", "version_gte", "6.9.0.0"), None, {1, 4}),
    (_c("app_version", "version_lt", "6.10"), None, {2, 3, 4}),
    (_c("app_version", "version_lt", "6.2.0"), None, set()),
    (_c("app_version", "version_lt", "6.2.1"), None, {2, 3}),
    ({"all": [_c("city", "in", ["Moscow", "Saint Petersburg"]), _c("app_version", "version_gte", "6.3")]}, None, {1}),
    ({"any": [_c("city", "eq", "Kazan"), _c("tags", "has", "vip")]}, None, {1, 4}),
    ({"all": [_c("city", "exists"), {"not": _c("premium", "eq", True)}]}, None, {2, 3, 4}),
    (
        {"any": [{"all": [_c("age", "gte", 18), {"not": {"any": [_c("city", "eq", "Kazan")]}}]}, _c("age", "lt", 0)]},
        None,
        {1},
    ),
    ({"all": [{"any": [{"not": {"any": [_c("tags", "has", "vip")]}}]}]}, None, {2, 3, 4, 5, 6, 7}),
    ({"any": [_c("signed_up", "after", "-P30D"), _c("city", "eq", "Kazan")]}, NOW, {1, 2, 4}),
]


@pytest.mark.parametrize(("rule", "now", "expected"), CASES, ids=[str(index) for index in range(len(CASES))])
def test_rule__evaluated_per_user_and_set_based__matches_exactly_and_its_not_the_rest(profiles, rule, now, expected):
    now = _at(now) if now else None
    assert _matching(rule_compile(rule=rule), now) == expected
    assert _matching(rule_compile(rule={"not": rule}), now) == EVERYONE - expected


def test_rule__relative_time__the_same_compiled_form_follows_the_clock(profiles):
    rule = rule_compile(rule=_c("signed_up", "after", "-P30D"))
    assert rule.relative
    assert [_matching(rule, _at(now)) for now in (NOW, "2024-02-14T09:45:00Z", "2024-03-01T00:00:00Z")] == [
        {1, 2},
        {1},
        set(),
    ]


def test_rule__relative_time__defaults_to_the_transactions_clock(profiles):
    rule = rule_compile(rule=_c("signed_up", "after", "-P30D"))
    assert _matching(rule, None) == set()  # 2024 is far in the past
    assert _matching(rule_compile(rule=_c("signed_up", "before", "-P30D")), None) == {1, 2, 4}


def test_rule__absolute__no_variables_and_compiled_once():
    rule = rule_compile(rule=_c("app_version", "version_gte", "6.2"))
    assert rule == CompiledRule(path='$."app_version"."v" >= "0001600012"', relative=False, matches_empty=False)
    predicate, params = rule_predicate(rule, document="d")
    assert (predicate, params) == ("d @@ %s::jsonpath", [rule.path])


def test_rule__largest_allowed__evaluates(profiles):
    values = [f"city {index}" for index in range(999)]
    rule = {"any": [_c("city", "in", [*values, "Moscow"])] * 50 + [_c("age", "in", list(range(1000)))] * 50}
    assert _matching(rule_compile(rule=rule), None) == {1, 4}


@pytest.mark.parametrize(
    ("rule", "matches_empty"),
    [
        (_c("city", "eq", "Moscow"), False),
        (_c("city", "not_exists"), True),
        ({"not": _c("city", "eq", "Moscow")}, True),
        ({"not": _c("signed_up", "after", "-P30D")}, True),
        ({"all": [{"not": _c("city", "exists")}, _c("age", "lt", 3)]}, False),
    ],
)
def test_rule__matches_empty__says_whether_a_user_without_attributes_matches(profiles, rule, matches_empty):
    compiled = rule_compile(rule=rule)
    assert compiled.matches_empty is matches_empty
    assert (7 in _matching(compiled, None)) is matches_empty


def _errors(rule) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as raised:
        rule_compile(rule=rule)
    return raised.value.extra["errors"]


CITY = _c("city", "eq", "Moscow")


def _nested(depth: int) -> dict:
    rule = CITY
    for _ in range(depth):
        rule = {"all": [rule]}
    return rule


INVALID = [
    # (rule, path of the error, part of its message)
    ([], "rule", "Expected a group"),
    ({}, "rule", "Expected a group"),
    ({"all": [CITY, "city"]}, "rule.all[1]", "Expected a group"),
    ({"all": []}, "rule.all", "1 to 100 nodes"),
    ({"any": [CITY] * 101}, "rule.any", "1 to 100 nodes"),
    ({"any": CITY}, "rule.any", "1 to 100 nodes"),
    ({"all": [CITY], "any": [CITY]}, "rule", "one key alone"),
    ({"not": CITY, "attribute": "city"}, "rule", "one key alone"),
    ({"not": []}, "rule.not", "Expected a group"),
    (_nested(6), "rule" + ".all[0]" * 5 + ".all", "At most 5 groups"),
    ({"not": {"not": {"not": {"not": {"not": {"not": CITY}}}}}}, "rule" + ".not" * 6, "At most 5 groups"),
    ({"all": [{"any": [CITY] * 100}, {"any": [CITY]}]}, "rule", "At most 100 conditions"),
    ({**CITY, "extra": 1}, "rule.extra", "Unknown field"),
    (_c("City", "eq", "x"), "rule.attribute", "An attribute name"),
    ({"op": "eq", "value": "x"}, "rule.attribute", "An attribute name"),
    (_c("city", "equals", "x"), "rule.op", "An operator"),
    ({"attribute": "city", "value": "x"}, "rule.op", "An operator"),
    (_c("city", "exists", True), "rule.value", "exists takes no value"),
    (_c("city", "not_exists", None), "rule.value", "not_exists takes no value"),
    (_c("city", "eq"), "rule.value", "required"),
    (_c("city", "eq", ["Moscow"]), "rule.value", "a string, a finite number or a boolean"),
    (_c("city", "ne", None), "rule.value", "a string, a finite number or a boolean"),
    (_c("age", "eq", float("nan")), "rule.value", "a string, a finite number or a boolean"),
    (_c("city", "eq", "x" * 1001), "rule.value", "at most 1,000 characters"),
    (_c("city", "eq", "a\x00"), "rule.value", "NUL"),
    (_c("age", "lt", "30"), "rule.value", "a finite number"),
    (_c("age", "gte", True), "rule.value", "a finite number"),
    (_c("age", "gt", float("inf")), "rule.value", "a finite number"),
    (_c("city", "in", []), "rule.value", "a list of 1 to 1,000"),
    (_c("city", "in", "Moscow"), "rule.value", "a list of 1 to 1,000"),
    (_c("city", "not_in", ["x"] * 1001), "rule.value", "a list of 1 to 1,000"),
    (_c("city", "in", ["Moscow", 1]), "rule.value[1]", "strings alone"),
    (_c("age", "in", [1, "Moscow"]), "rule.value[1]", "strings alone"),
    (_c("premium", "in", [True]), "rule.value[0]", "strings alone"),
    (_c("city", "in", ["x", "y" * 1001]), "rule.value[1]", "at most 1,000 characters"),
    (_c("city", "contains", 1), "rule.value", "Expected a string"),
    (_c("city", "starts_with", ["M"]), "rule.value", "Expected a string"),
    (_c("tags", "has", ["vip"]), "rule.value", "Expected a string"),
    (_c("at", "before", 1705312800), "rule.value", "Expected a string"),
    (_c("at", "before", "P1M"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "before", "-P1Y"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", "-P1.5D"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", "-PT0.5S"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", "PT"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", "P1DT"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", " -P30D"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", "2024-01-15"), "rule.value", "RFC 3339 timestamp"),
    (_c("at", "after", "2024-02-30T00:00:00Z"), "rule.value", "RFC 3339 timestamp"),
    (_c("v", "version_gte", "6.x"), "rule.value", "Expected a version"),
    (_c("v", "version_lt", "6."), "rule.value", "Expected a version"),
    (_c("v", "version_lt", 6.2), "rule.value", "Expected a string"),
]


@pytest.mark.parametrize(("rule", "path", "message"), INVALID, ids=[str(index) for index in range(len(INVALID))])
def test_rule_compile__outside_the_grammar__refused_at_the_path_of_the_bad_node(rule, path, message):
    errors = _errors(rule)
    assert list(errors) == [path], errors
    assert message in errors[path][0]


def test_rule_compile__several_bad_nodes__each_named():
    rule = {"all": [CITY, _c("age", "lt", "x"), {"not": {"any": [CITY, _c("v", "version_lt", "x")]}}, {"all": []}]}
    assert set(_errors(rule)) == {"rule.all[1].value", "rule.all[2].not.any[1].value", "rule.all[3].all"}


def test_rule_compile__limits_reached_exactly__accepted(profiles):
    assert _matching(rule_compile(rule=_nested(5)), None) == {1}
    assert _matching(rule_compile(rule={"any": [CITY] * 100}), None) == {1}
    not_five = {"not": {"not": {"not": {"not": {"not": CITY}}}}}
    assert _matching(rule_compile(rule=not_five), None) == EVERYONE - {1}
    assert _matching(rule_compile(rule=CITY), None) == {1}


TEXTS = [
    (
        {"all": [_c("city", "in", ["Moscow", "Saint Petersburg"]), _c("app_version", "version_gte", "6.2")]},
        "city in [Moscow, Saint Petersburg] and app_version ≥ 6.2",
    ),
    (
        {"any": [{"all": [CITY, _c("age", "gte", 18)]}, _c("tags", "has", "vip")]},
        "(city = Moscow and age ≥ 18) or tags has vip",
    ),
    (
        {"all": [{"any": [{"any": [CITY, _c("age", "lt", 18)]}]}, _c("x", "exists")]},
        "(city = Moscow or age < 18) and x exists",
    ),
    ({"all": [{"all": [CITY]}]}, "city = Moscow"),
    ({"not": {"any": [CITY, _c("city", "not_exists")]}}, "not (city = Moscow or city does not exist)"),
    ({"all": [{"not": CITY}, _c("premium", "ne", True)]}, "not (city = Moscow) and premium ≠ true"),
    (_c("age", "eq", "30"), 'age = "30"'),
    (_c("city", "not_in", ["a, b", "c"]), 'city not in ["a, b", c]'),
    (_c("age", "in", [1, 2.5]), "age in [1, 2.5]"),
    (_c("name", "contains", ""), 'name contains ""'),
    (_c("name", "starts_with", "30"), "name starts with 30"),
    (_c("signed_up", "after", "-P30D"), "signed_up after 30 days ago"),
    (_c("signed_up", "before", "-PT20S"), "signed_up before 20 seconds ago"),
    (_c("signed_up", "before", "P1W1DT2H"), "signed_up before 1 week 1 day 2 hours from now"),
    (_c("signed_up", "after", "PT0S"), "signed_up after now"),
    (_c("signed_up", "after", "2024-01-15T12:00:00+03:00"), "signed_up after 2024-01-15T12:00:00+03:00"),
    (_c("app_version", "version_lt", "6.10.0"), "app_version < 6.10.0"),
]


@pytest.mark.parametrize(("rule", "text"), TEXTS)
def test_rule_text__valid_rule__reads_as_text(rule, text):
    assert rule_text(rule) == text


def _plan(rule: CompiledRule) -> str:
    predicate, params = rule_predicate(rule, document="document")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT user_id FROM users_userattributes WHERE {predicate}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_rule__without_relative_times__set_based_scan_can_use_the_gin_index(db):
    User.objects.bulk_create([User(id=user_id) for user_id in range(1, 2001)])
    UserAttributes.objects.bulk_create(
        [UserAttributes(user_id=user_id, attributes={"city": f"city {user_id % 100}"}) for user_id in range(1, 2001)]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users_userattributes")
    rule = {"all": [_c("city", "in", ["city 1", "city 2"]), {"not": _c("age", "gt", 3)}]}
    assert "Bitmap Index Scan on user_attributes_document" in _plan(rule_compile(rule=rule))
    relative = {"all": [rule, _c("signed_up", "after", "-P30D")]}
    assert "user_attributes_document" not in _plan(rule_compile(rule=relative))
