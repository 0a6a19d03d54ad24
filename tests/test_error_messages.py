"""Problem details read like a person wrote them: field paths (`add[1]`, `add[0].ttl`), the closest known field
for an unknown one, the existing segment for a slug that differs from it only in case (the fast lane's
refusals go to Django: tests/test_hot_path.py)."""

import pytest

from segments.services import segment_create
from users.services import user_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment_and_user():
    user_register(user_id=1000, actor="t")
    segment_create(slug="AVITO_DISCOUNT_30", actor="t")


@pytest.mark.parametrize(
    ("body", "detail", "errors"),
    [
        (
            {
                "add": [
                    "AVITO_DISCOUNT_30",
                    {"slug": "AVITO_DISCOUNT_30", "expires_at": "2035-01-01T00:00:00Z", "ttl_seconds": 1},
                ]
            },
            "add[1]: Give expires_at or ttl_seconds, not both.",
            {"add[1]": ["Give expires_at or ttl_seconds, not both."]},
        ),
        (
            {"add": [{"slug": "AVITO_DISCOUNT_30", "ttl": 60}]},
            "add[0].ttl: Unknown field; did you mean `ttl_seconds`?",
            {"add[0].ttl": ["Unknown field; did you mean `ttl_seconds`?"]},
        ),
        (
            {"add": ["AVITO_DISCOUNT_30"], "remove": ["AVITO_DISCOUNT_30"]},
            "Segments both added and removed: AVITO_DISCOUNT_30",
            {"non_field_errors": ["Segments both added and removed: AVITO_DISCOUNT_30"]},
        ),
    ],
    ids=["item_of_a_list", "field_of_an_item", "whole_body"],
)
def test_validation_error__nested__detail_names_the_field_path(problem, api, segment_and_user, body, detail, errors):
    answer = problem(api.patch("/api/v1/users/1000/segments/", body, format="json"), 400, "validation_error")
    assert (answer["detail"], answer["errors"]) == (detail, errors)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("rollout", "Unknown field; did you mean `rollout_percent`?"),
        ("percent", "Unknown field; did you mean `rollout_percent`?"),
        ("desc", "Unknown field; did you mean `description`?"),
        ("colour", "Unknown field."),
    ],
)
def test_unknown_field__names_the_closest_known_one(problem, api, field, message):
    answer = problem(api.post("/api/v1/segments/", {"slug": "S", field: 5}, format="json"), 400, "validation_error")
    assert answer["errors"] == {field: [message]}
    assert answer["detail"] == f"{field}: {message}"


def test_import_json_with_an_unknown_key__names_user_ids(problem, api):
    api.post("/api/v1/segments/", {"slug": "S"}, format="json")
    body = b'{"user_id": [1000]}'
    response = api.post("/api/v1/segments/S/imports/", body, content_type="application/json")
    answer = problem(response, 400, "validation_error")
    assert answer["errors"] == {"user_id": ["Unknown field; did you mean `user_ids`?"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/segments/avito_discount_30/", None),
        ("patch", "/api/v1/segments/avito_discount_30/", {"description": "x"}),
        ("post", "/api/v1/segments/avito_discount_30/rollout/", {"percent": 5}),
        ("post", "/api/v1/segments/avito_discount_30/imports/", {"user_ids": [1000]}),
        ("patch", "/api/v1/users/1000/segments/", {"add": ["avito_discount_30"]}),
        ("patch", "/api/v1/users/1000/segments/", {"remove": ["avito_discount_30"]}),
        ("post", "/api/v1/webhooks/", {"url": "https://93.184.215.14/x", "segments": ["avito_discount_30"]}),
        ("delete", "/api/delete_segment", {"segment_slug": "avito_discount_30"}),
        ("post", "/api/auto_assign_segment", {"segment_slug": "avito_discount_30", "fraction": 5}),
    ],
)
def test_unknown_slug__differs_only_in_case__404_names_the_segment(problem, api, segment_and_user, method, path, body):
    answer = problem(getattr(api, method)(path, body, format="json"), 404, "segment_not_found")
    assert answer["detail"] == "Unknown segments: avito_discount_30 (did you mean `AVITO_DISCOUNT_30`?)"
    assert answer["slugs"] == ["avito_discount_30"]


def test_unknown_slug__no_segment_like_it__404_lists_it_alone(problem, api, segment_and_user):
    answer = problem(api.get("/api/v1/segments/AVITO_DISCOUNT_31/"), 404, "segment_not_found")
    assert answer["detail"] == "Unknown segments: AVITO_DISCOUNT_31"


def test_unknown_fields__many__suggestions_for_the_first_20_only(problem, api):
    body = {"slug": "S", **{f"slug_{index:02}": 1 for index in range(25)}}
    answer = problem(api.post("/api/v1/segments/", body, format="json"), 400, "validation_error")
    messages = [answer["errors"][f"slug_{index:02}"] for index in range(25)]
    assert messages == [["Unknown field; did you mean `slug`?"]] * 20 + [["Unknown field."]] * 5
