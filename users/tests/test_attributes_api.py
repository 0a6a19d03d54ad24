"""Users' attributes through the API: each write evaluates its users against the rule segments in its
transaction and answers what they entered and left."""

import json

import pytest

from segments.models import HistoryEvent, Membership
from segments.services import automatic_verify, segment_create
from users.models import User, UserAttributes
from users.services import users_register

pytestmark = pytest.mark.django_db

MOSCOW = {"attribute": "city", "op": "eq", "value": "Moscow"}
NEW_APP = {"attribute": "app_version", "op": "version_gte", "value": "6.2"}


@pytest.fixture
def rule_segments(db):
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    segment_create(slug="NEW_APP", rule=NEW_APP, actor="pm")
    segment_create(slug="NO_CITY", rule={"not": {"attribute": "city", "op": "exists"}}, actor="pm")


def member_slugs(user_id: int) -> set[str]:
    return set(Membership.objects.active().filter(user_id=user_id).values_list("segment__slug", flat=True))


def test_put__unknown_user__201_registered_with_its_rule_segments(api, rule_segments):
    response = api.put("/api/v1/users/7/attributes/", {"attributes": {"city": "Moscow", "x": None}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["user_id"], body["attributes"], body["entered"], body["left"]) == (7, {"city": "Moscow"}, ["MSK"], [])
    assert body["updated_at"].endswith("Z")
    assert member_slugs(7) == {"MSK"}
    assert list(HistoryEvent.objects.filter(user_id=7).values_list("segment_slug", "source", "actor")) == [
        ("MSK", "rule", "tests")
    ]


def test_put_then_patch__entered_and_left_answered(api, rule_segments):
    api.put("/api/v1/users/7/attributes/", {"attributes": {"city": "Moscow", "app_version": "6.1"}}, format="json")
    response = api.patch(
        "/api/v1/users/7/attributes/", {"attributes": {"city": None, "app_version": "6.10"}}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["attributes"], body["entered"], body["left"]) == (
        {"app_version": "6.10"},
        ["NEW_APP", "NO_CITY"],
        ["MSK"],
    )
    assert member_slugs(7) == {"NEW_APP", "NO_CITY"}
    assert api.get("/api/v1/users/7/attributes/").json()["attributes"] == {"app_version": "6.10"}
    assert automatic_verify() == []


def test_patch__unchanged__nothing_entered(api, rule_segments):
    api.put("/api/v1/users/7/attributes/", {"attributes": {"city": "Moscow"}}, format="json")
    body = api.patch("/api/v1/users/7/attributes/", {"attributes": {"city": "Moscow"}}, format="json").json()
    assert (body["entered"], body["left"]) == ([], [])


def test_patch_and_get__unknown_user__404_user_not_found(api, problem):
    problem(api.patch("/api/v1/users/7/attributes/", {"attributes": {}}, format="json"), 404, "user_not_found")
    problem(api.get("/api/v1/users/7/attributes/"), 404, "user_not_found")
    assert not User.objects.exists()


def test_get__user_without_attributes__empty(api):
    users_register(user_ids=[7], actor="tests")
    assert api.get("/api/v1/users/7/attributes/").json() == {"user_id": 7, "attributes": {}, "updated_at": None}


def test_put__invalid_attribute__400_naming_it_and_nothing_written(api, problem, rule_segments):
    response = api.put("/api/v1/users/7/attributes/", {"attributes": {"City": "x", "tags": [1]}}, format="json")
    body = problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"attributes.City", "attributes.tags[0]"}
    assert not User.objects.exists()


def test_read_only_token__may_read_not_write(api, read_only_token, problem):
    users_register(user_ids=[7], actor="tests")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    assert api.get("/api/v1/users/7/attributes/").status_code == 200
    problem(api.patch("/api/v1/users/7/attributes/", {"attributes": {}}, format="json"), 403, "permission_denied")


def test_batch__merge__counts_and_memberships(api, rule_segments):
    users_register(user_ids=[1, 2], actor="tests")
    UserAttributes.objects.create(user_id=2, attributes={"city": "Moscow", "app_version": "7"})
    body = {
        "users": [
            {"user_id": 1, "attributes": {"city": "Moscow"}},
            {"user_id": 2, "attributes": {"city": None}},
            {"user_id": 3, "attributes": {"app_version": "6.2.0"}},
        ],
        "mode": "merge",
    }
    response = api.post("/api/v1/users/attributes/", body, format="json")
    assert response.status_code == 200, response.content
    # 1 and 2 joined NO_CITY when registered (2's attributes were then written past the API). 1: entered
    # MSK, left NO_CITY; 2: entered NEW_APP, stays in NO_CITY; 3: registered, entered NEW_APP and NO_CITY.
    assert response.json() == {"created": 1, "updated": 2, "entered": 4, "left": 1}
    assert (member_slugs(1), member_slugs(2), member_slugs(3)) == (
        {"MSK"},
        {"NEW_APP", "NO_CITY"},
        {"NEW_APP", "NO_CITY"},
    )
    assert UserAttributes.objects.get(user_id=2).attributes == {"app_version": "7"}
    assert automatic_verify() == []


def test_batch__replace__an_invalid_user__400_all_or_nothing(api, problem, rule_segments):
    body = {
        "users": [{"user_id": 1, "attributes": {"city": "Moscow"}}, {"user_id": 2, "attributes": {"bad key": 1}}],
        "mode": "replace",
    }
    errors = problem(api.post("/api/v1/users/attributes/", body, format="json"), 400, "validation_error")["errors"]
    assert list(errors) == ["users[1].attributes.bad key"]
    assert not User.objects.exists() and not UserAttributes.objects.exists()


def test_batch__repeated_user__400(api, problem):
    body = {"users": [{"user_id": 1, "attributes": {}}, {"user_id": 1, "attributes": {}}]}
    assert (
        "users"
        in problem(api.post("/api/v1/users/attributes/", body, format="json"), 400, "validation_error")["errors"]
    )


def test_batch__body_over_1_mib__taken_up_to_16(api, rule_segments):
    users = [{"user_id": i, "attributes": {"note": "x" * 1000, "city": "Moscow"}} for i in range(1, 1501)]
    body = json.dumps({"users": users, "mode": "replace"})
    assert len(body) > 1024 * 1024
    response = api.post("/api/v1/users/attributes/", body, content_type="application/json")
    assert response.json() == {"created": 1500, "updated": 0, "entered": 1500, "left": 0}
