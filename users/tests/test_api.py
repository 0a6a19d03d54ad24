from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from segments.models import HistoryEvent, Membership, Segment
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db):
    User.objects.bulk_create([User(id=i) for i in (1000, 1002, 1004)])
    for slug in ["AVITO_VOICE_MESSAGES", "AVITO_PERFORMANCE_VAS", "AVITO_DISCOUNT_30", "AVITO_DISCOUNT_50"]:
        Segment.objects.create(slug=slug)


def patch(api, user_id, body):
    return api.patch(f"/api/v1/users/{user_id}/segments/", body, format="json")


def test_put__new_then_existing__201_then_200(api):
    first = api.put("/api/v1/users/1000/")
    assert first.status_code == 201
    assert first.json()["user_id"] == 1000 and first.json()["memberships"] == []
    assert api.put("/api/v1/users/1000/").status_code == 200
    assert User.objects.count() == 1


def test_bulk_register__mixed__counts_created_and_existing(api):
    User.objects.create(id=5)
    response = api.post("/api/v1/users/", {"user_ids": [5, 6, 7, 7]}, format="json")
    assert response.json() == {"created": 2, "existing": 1}


@pytest.mark.parametrize("ids", [[], [0], [-1], [1.5], [True], ["x"], [2**63], list(range(1, 10_002))])
def test_bulk_register__bad_ids__400_and_nothing_created(problem, api, ids):
    problem(api.post("/api/v1/users/", {"user_ids": ids}, format="json"), 400, "validation_error")
    assert not User.objects.exists()


@pytest.mark.parametrize("user_id", ["0", "-1", "1.5", "abc", "true", "9223372036854775808", "1e3"])
def test_user_paths__invalid_id__400(problem, api, user_id):
    problem(api.get(f"/api/v1/users/{user_id}/segments/"), 400, "validation_error")
    problem(api.put(f"/api/v1/users/{user_id}/"), 400, "validation_error")


def test_user_paths__max_id__accepted(api):
    assert api.put("/api/v1/users/9223372036854775807/").status_code == 201


def test_get_user__memberships__listed(problem, api, setup):
    patch(api, 1000, {"add": ["AVITO_DISCOUNT_30"]})
    body = api.get("/api/v1/users/1000/").json()
    assert [m["segment"] for m in body["memberships"]] == ["AVITO_DISCOUNT_30"]
    assert set(body["memberships"][0]) == {"segment", "added_at", "expires_at", "source"}
    problem(api.get("/api/v1/users/77/"), 404, "user_not_found")


def test_delete_user__204_and_history(problem, api, setup):
    patch(api, 1000, {"add": ["AVITO_DISCOUNT_30"]})
    assert api.delete("/api/v1/users/1000/").status_code == 204
    assert HistoryEvent.objects.filter(source="user_deleted").count() == 1
    problem(api.delete("/api/v1/users/1000/"), 404, "user_not_found")


def test_get_segments__unknown_user__404_with_user_id(problem, api):
    assert problem(api.get("/api/v1/users/1000/segments/"), 404, "user_not_found")["user_id"] == 1000


def test_get_segments__hot_path__one_query_and_sorted(api, setup):
    patch(api, 1000, {"add": ["AVITO_VOICE_MESSAGES", "AVITO_DISCOUNT_30", "AVITO_PERFORMANCE_VAS"]})
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/users/1000/segments/")
    assert response.json() == {
        "user_id": 1000,
        "segments": ["AVITO_DISCOUNT_30", "AVITO_PERFORMANCE_VAS", "AVITO_VOICE_MESSAGES"],
    }
    assert len(queries) == 1


def test_patch__example__response_shape(api, setup):
    response = patch(api, 1002, {"add": ["AVITO_VOICE_MESSAGES", "AVITO_DISCOUNT_50"], "remove": ["AVITO_DISCOUNT_30"]})
    assert response.json() == {
        "user_id": 1002,
        "added": ["AVITO_DISCOUNT_50", "AVITO_VOICE_MESSAGES"],
        "updated": [],
        "removed": [],
        "segments": ["AVITO_DISCOUNT_50", "AVITO_VOICE_MESSAGES"],
    }
    assert set(HistoryEvent.objects.values_list("actor", flat=True)) == {"tests"}


def test_patch__unknown_slug_in_add__remove_undone_404_listing_all(problem, api, setup):
    patch(api, 1000, {"add": ["AVITO_DISCOUNT_30"]})
    body = problem(
        patch(api, 1000, {"add": ["AVITO_Y", "AVITO_X"], "remove": ["AVITO_DISCOUNT_30", "AVITO_Z"]}),
        404,
        "segment_not_found",
    )
    assert body["slugs"] == ["AVITO_X", "AVITO_Y", "AVITO_Z"]
    assert Membership.objects.count() == 1 and HistoryEvent.objects.count() == 1


def test_patch__unknown_user__404(problem, api, setup):
    problem(patch(api, 5, {"add": ["AVITO_DISCOUNT_30"]}), 404, "user_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"add": ["AVITO_DISCOUNT_30"], "remove": ["AVITO_DISCOUNT_30"]},
        {"add": [{"slug": "AVITO_DISCOUNT_30", "expires_at": "2001-01-01T00:00:00Z"}]},
        {"add": [{"slug": "AVITO_DISCOUNT_30", "ttl_seconds": 0}]},
        {"add": [{"slug": "AVITO_DISCOUNT_30", "ttl_seconds": 5, "expires_at": "2999-01-01T00:00:00Z"}]},
        {"add": [{"slug": "AVITO_DISCOUNT_30", "ttl_seconds": "soon"}]},
        {"add": [{"slug": "AVITO_DISCOUNT_30", "expires_at": "tomorrow"}]},
        {"add": [{"expires_at": "2999-01-01T00:00:00Z"}]},
        {"add": [{"slug": "AVITO_DISCOUNT_30", "colour": "red"}]},
        {"add": "AVITO_DISCOUNT_30"},
        {"add": [5]},
        {"add": ["AVITO_DISCOUNT_30", "AVITO_DISCOUNT_30"]},
        {"remove": ["bad slug"]},
        {"add": [], "extra": 1},
        ["AVITO_DISCOUNT_30"],
    ],
)
def test_patch__invalid_body__400_and_nothing_changes(problem, api, setup, body):
    problem(patch(api, 1000, body), 400, "validation_error")
    assert not Membership.objects.exists() and not HistoryEvent.objects.exists()


SLUG = "AVITO_DISCOUNT_30"


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        ({"expires_at": "9999-01-01T00:00:00Z"}, f"add: {SLUG}: expires_at must be before 9999-01-01T00:00:00Z"),
        ({"expires_at": "9999-06-01T12:00:00+14:00"}, f"add: {SLUG}: expires_at must be before 9999-01-01T00:00:00Z"),
        # refused before the bound too: past Python's datetime in UTC, and a TTL past its maximum
        ({"expires_at": "9999-12-31T23:59:59-05:00"}, "add[0].expires_at: Datetime value out of range."),
        ({"ttl_seconds": 10**30}, "add[0].ttl_seconds: Ensure this value is less than or equal to 3162240000."),
    ],
    ids=["at_the_bound", "past_it_in_utc_plus_14", "year_10000_in_utc", "huge_ttl"],
)
def test_patch__expiry_past_the_bound__400_naming_it_and_nothing_changes(problem, api, setup, item, detail):
    body = problem(patch(api, 1000, {"add": [{"slug": SLUG, **item}]}), 400, "validation_error")
    assert body["detail"] == detail
    assert not Membership.objects.exists() and not HistoryEvent.objects.exists()


def test_patch__expires_at_and_ttl__set_and_replaced(api, setup):
    at = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    body = patch(api, 1000, {"add": [{"slug": "AVITO_DISCOUNT_30", "expires_at": at.isoformat()}]}).json()
    assert body["added"] == ["AVITO_DISCOUNT_30"]
    assert Membership.objects.get().expires_at == at
    again = patch(api, 1000, {"add": [{"slug": "AVITO_DISCOUNT_30", "ttl_seconds": 172800}]}).json()
    assert again["added"] == [] and again["updated"] == ["AVITO_DISCOUNT_30"]
    assert HistoryEvent.objects.count() == 1


def test_patch__expired_membership__not_returned_and_readd_is_add(api, setup):
    patch(api, 1000, {"add": [{"slug": "AVITO_DISCOUNT_30", "ttl_seconds": 60}]})
    Membership.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/v1/users/1000/segments/").json()["segments"] == []
    assert api.get("/api/v1/users/1000/").json()["memberships"] == []
    assert patch(api, 1000, {"add": ["AVITO_DISCOUNT_30"]}).json()["added"] == ["AVITO_DISCOUNT_30"]
