"""The old service's endpoints, as its clients call them."""

import json

import pytest

from segments.models import HistoryEvent, Membership, Segment
from users.services import users_seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    users_seed(count=1000, start=1000, actor="t")


def call(api, method, path, body):
    """Send a JSON body with any method, as the old clients did (GET and DELETE included)."""
    return api.generic(method, path, json.dumps(body), content_type="application/json")


def test_create_segment__with_and_without_fraction__201(problem, api, seeded):
    assert call(api, "POST", "/api/create_segment", {"segment_slug": "A"}).json() == {
        "segment_slug": "A",
        "fraction": 0,
    }
    response = call(api, "POST", "/api/create_segment", {"segment_slug": "B", "fraction": 10})
    assert response.status_code == 201 and response.json() == {"segment_slug": "B", "fraction": 10}
    assert Membership.objects.filter(segment__slug="B", source="rollout").count() > 0
    problem(call(api, "POST", "/api/create_segment", {"segment_slug": "A"}), 409, "segment_exists")


@pytest.mark.parametrize("fraction", [0, 101, -5, "x"])
def test_create_segment__fraction_out_of_1_100__400(problem, api, fraction):
    problem(
        call(api, "POST", "/api/create_segment", {"segment_slug": "A", "fraction": fraction}), 400, "validation_error"
    )
    assert not Segment.objects.exists()


def test_delete_segment__200_then_404(problem, api, seeded):
    Segment.objects.create(slug="A")
    assert call(api, "DELETE", "/api/delete_segment", {"segment_slug": "A"}).json() == {"segment_slug": "A"}
    problem(call(api, "DELETE", "/api/delete_segment", {"segment_slug": "A"}), 404, "segment_not_found")


@pytest.mark.parametrize(
    ("add_key", "remove_key"), [("assign_features", "unassign_features"), ("assign_segments", "unassign_segments")]
)
def test_update_user_segments__both_spellings__same_as_v1_patch(api, seeded, add_key, remove_key):
    for slug in ("A", "B"):
        Segment.objects.create(slug=slug)
    call(api, "POST", "/api/update_user_segments", {"user_id": 1000, add_key: ["B"]})
    response = call(api, "POST", "/api/update_user_segments", {"user_id": 1000, add_key: ["A"], remove_key: ["B"]})
    assert response.json() == {"user_id": 1000, "added": ["A"], "updated": [], "removed": ["B"], "segments": ["A"]}


def test_update_user_segments__both_spellings_of_one_field__400(problem, api, seeded):
    Segment.objects.create(slug="A")
    body = {"user_id": 1000, "assign_features": ["A"], "assign_segments": ["A"]}
    problem(call(api, "POST", "/api/update_user_segments", body), 400, "validation_error")
    assert not Membership.objects.exists()


def test_update_user_segments__ttl_days__applied_to_every_assigned(problem, api, seeded):
    Segment.objects.create(slug="A")
    Segment.objects.create(slug="B")
    call(api, "POST", "/api/update_user_segments", {"user_id": 1000, "assign_segments": ["A", "B"], "ttl": 2})
    spans = {m.expires_at - m.added_at for m in Membership.objects.all()}
    assert len(spans) == 1 and abs(spans.pop().total_seconds() - 2 * 86400) < 2
    problem(
        call(api, "POST", "/api/update_user_segments", {"user_id": 1000, "assign_segments": ["A"], "ttl": 0}),
        400,
        "validation_error",
    )


@pytest.mark.parametrize("ttl", [36_601, 10**30])
def test_update_user_segments__ttl_past_its_maximum__400_and_nothing_changes(problem, api, seeded, ttl):
    """`ttl` days are bounded (36,600, a century), so the expiry they make is far before the latest one."""
    Segment.objects.create(slug="A")
    body = {"user_id": 1000, "assign_segments": ["A"], "ttl": ttl}
    problem(call(api, "POST", "/api/update_user_segments", body), 400, "validation_error")
    assert not Membership.objects.exists() and not HistoryEvent.objects.exists()


def test_get_user_segments__json_body_or_query_string(api, seeded):
    Segment.objects.create(slug="A")
    call(api, "POST", "/api/update_user_segments", {"user_id": 1002, "assign_segments": ["A"]})
    expected = {"segments": ["A"], "user_id": 1002}
    assert call(api, "GET", "/api/get_user_segments", {"user_id": 1002}).json() == expected
    assert api.get("/api/get_user_segments?user_id=1002").json() == expected
    assert api.get("/api/get_user_segments", {"user_id": 1004}).json() == {"segments": [], "user_id": 1004}


def test_get_user_segments__body_without_content_type__read_as_json(api, seeded):
    response = api.generic("GET", "/api/get_user_segments", '{"user_id": 1000}', content_type="")
    assert response.json() == {"segments": [], "user_id": 1000}


def test_get_user_segments__bad_or_unknown_user__400_or_404(problem, api, seeded):
    problem(api.get("/api/get_user_segments"), 400, "validation_error")
    problem(api.get("/api/get_user_segments?user_id=abc"), 400, "validation_error")
    problem(api.get("/api/get_user_segments?user_id=5"), 404, "user_not_found")


def test_auto_assign_segment__both_spellings__rollout_applied(problem, api, seeded):
    Segment.objects.create(slug="AVITO_VOICE_MESSAGES")
    first = call(
        api, "POST", "/api/auto_assign_segment", {"feature_slug": "AVITO_VOICE_MESSAGES", "fraction": 30}
    ).json()
    assert first["segment_slug"] == "AVITO_VOICE_MESSAGES" and first["fraction"] == 30 and first["added"] > 0
    second = call(
        api, "POST", "/api/auto_assign_segment", {"segment_slug": "AVITO_VOICE_MESSAGES", "fraction": 10}
    ).json()
    assert second["added"] == 0 and second["removed"] > 0
    assert HistoryEvent.objects.filter(source="rollout").count() == first["added"] + second["removed"]
    both = {"segment_slug": "AVITO_VOICE_MESSAGES", "feature_slug": "AVITO_VOICE_MESSAGES", "fraction": 10}
    problem(call(api, "POST", "/api/auto_assign_segment", both), 400, "validation_error")
    problem(call(api, "POST", "/api/auto_assign_segment", {"fraction": 10}), 400, "validation_error")
    problem(
        call(api, "POST", "/api/auto_assign_segment", {"segment_slug": "NOPE", "fraction": 10}),
        404,
        "segment_not_found",
    )
