"""POST /api/v1/users/segments/: many users' active segments in one query (API.md, "Big segments")."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from segments.models import Membership, Segment
from users.models import User

pytestmark = pytest.mark.django_db
URL = "/api/v1/users/segments/"


@pytest.fixture
def members(db):
    """Users 1000 (B and A, plus an expired C), 1001 (none) and 1002 (A)."""
    User.objects.bulk_create([User(id=i) for i in (1000, 1001, 1002)])
    a, b, c = (Segment.objects.create(slug=slug) for slug in ("SEG_A", "SEG_B", "SEG_C"))
    past = timezone.now() - timedelta(seconds=5)
    Membership.objects.bulk_create(
        [
            Membership(user_id=1000, segment=b),
            Membership(user_id=1000, segment=a),
            Membership(user_id=1000, segment=c, expires_at=past),
            Membership(user_id=1002, segment=a, expires_at=timezone.now() + timedelta(days=1)),
        ]
    )


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    return response.json()


def test_batch_lookup__mixed_users__request_order_sorted_active_slugs_and_unknown_ids(api, members):
    response = api.post(URL, {"user_ids": [1002, 7, 1000, 1001, 5]}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "users": [
            {"user_id": 1002, "segments": ["SEG_A"]},
            {"user_id": 1000, "segments": ["SEG_A", "SEG_B"]},
            {"user_id": 1001, "segments": []},
        ],
        "unknown_user_ids": [7, 5],
    }


def test_batch_lookup__answers_as_the_hot_get_for_each_user(api, members):
    body = api.post(URL, {"user_ids": [1000, 1001, 1002]}, format="json").json()
    for user in body["users"]:
        assert api.get(f"/api/v1/users/{user['user_id']}/segments/").json() == user


def test_batch_lookup__1000_users__one_query(api, members):
    User.objects.bulk_create([User(id=i) for i in range(1, 998)])
    user_ids = [*range(1, 998), 1000, 1002, 9999]
    api.post(URL, {"user_ids": [1000]}, format="json")  # the token is cached from here on
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, {"user_ids": user_ids}, format="json")
    assert response.status_code == 200
    assert len(queries) == 1
    body = response.json()
    assert [user["user_id"] for user in body["users"]] == user_ids[:-1]
    assert body["unknown_user_ids"] == [9999]


def test_batch_lookup__read_only_token__allowed(members, read_only_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    response = client.post(URL, {"user_ids": [1002]}, format="json")
    assert response.status_code == 200
    assert response.json()["users"] == [{"user_id": 1002, "segments": ["SEG_A"]}]


def test_batch_lookup__no_token__401(anon, members):
    _problem(anon.post(URL, {"user_ids": [1000]}, format="json"), 401, "not_authenticated")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_ids": []},
        {"user_ids": "1000"},
        {"user_ids": [0]},
        {"user_ids": [-1]},
        {"user_ids": [1.5]},
        {"user_ids": [True]},
        {"user_ids": ["1e3"]},
        {"user_ids": [2**63]},
        {"user_ids": [None]},
        {"user_ids": list(range(1, 1002))},
        {"user_ids": [1000, 1001, 1000]},
        {"user_ids": [1000], "extra": 1},
        [1000],
    ],
)
def test_batch_lookup__bad_body__400(api, members, body):
    _problem(api.post(URL, body, format="json"), 400, "validation_error")


def test_batch_lookup__repeated_ids__named_in_the_problem(api, members):
    body = _problem(api.post(URL, {"user_ids": [3, 1000, 3, 1000]}, format="json"), 400, "validation_error")
    assert "3, 1000" in json.dumps(body)


def test_batch_lookup__digit_strings_and_max_id__accepted(api, members):
    response = api.post(URL, {"user_ids": ["1000", 2**63 - 1]}, format="json")
    assert response.json() == {
        "users": [{"user_id": 1000, "segments": ["SEG_A", "SEG_B"]}],
        "unknown_user_ids": [2**63 - 1],
    }


def test_batch_lookup__malformed_json__400(api, members):
    _problem(api.post(URL, b'{"user_ids": [1', content_type="application/json"), 400, "malformed_json")


def test_batch_lookup__not_json__415(api, members):
    _problem(api.post(URL, b"1000", content_type="text/plain"), 415, "unsupported_media_type")


def test_batch_lookup__body_over_1_mib__413(api, members):
    body = json.dumps({"user_ids": [1000], "pad": "x" * (1024 * 1024)})
    _problem(api.post(URL, body, content_type="application/json"), 413, "payload_too_large")


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_batch_lookup__other_methods__405(api, members, method):
    assert getattr(api, method)(URL).status_code == 405
