import pytest

from segments.models import HistoryEvent, Membership, Segment
from segments.services import bucket
from users.services import users_seed

pytestmark = pytest.mark.django_db


def test_create__new_slug__201_segment_object(api):
    response = api.post("/api/v1/segments/", {"slug": "AVITO_DISCOUNT_30", "description": "30% off"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"slug", "description", "rollout_percent", "rule", "member_count", "created_at", "updated_at"}
    assert (body["slug"], body["description"], body["rollout_percent"], body["member_count"]) == (
        "AVITO_DISCOUNT_30",
        "30% off",
        0,
        0,
    )
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == 20


def test_create__duplicate_slug__409_segment_exists(problem, api):
    api.post("/api/v1/segments/", {"slug": "S"}, format="json")
    problem(api.post("/api/v1/segments/", {"slug": "S"}, format="json"), 409, "segment_exists")
    assert Segment.objects.count() == 1


@pytest.mark.parametrize("slug", ["", "-x", "a b", "ÄVITO", "x" * 101, 5, None, ["S"]])
def test_create__invalid_slug__400_naming_it(problem, api, slug):
    body = problem(api.post("/api/v1/segments/", {"slug": slug}, format="json"), 400, "validation_error")
    assert "slug" in body["errors"]
    assert not Segment.objects.exists()


@pytest.mark.parametrize("percent", [-1, 100.5, 10.555, "ten", True])
def test_create__invalid_rollout_percent__400(problem, api, percent):
    response = api.post("/api/v1/segments/", {"slug": "S", "rollout_percent": percent}, format="json")
    assert "rollout_percent" in problem(response, 400, "validation_error")["errors"]


def test_create__unknown_field__400(problem, api):
    problem(api.post("/api/v1/segments/", {"slug": "S", "rollout": 5}, format="json"), 400, "validation_error")


def test_create__with_rollout__covered_users_become_members(api):
    users_seed(count=1000, start=1000, actor="t")
    body = api.post("/api/v1/segments/", {"slug": "AVITO_VOICE_MESSAGES", "rollout_percent": 10}, format="json").json()
    expected = sum(bucket("AVITO_VOICE_MESSAGES", u) < 1000 for u in range(1000, 2000))
    assert body["member_count"] == expected == Membership.objects.count()


def test_list__cursor_pagination__ordered_by_slug(api):
    for slug in ["c", "a", "b"]:
        Segment.objects.create(slug=slug)
    page = api.get("/api/v1/segments/?page_size=2").json()
    assert [s["slug"] for s in page["results"]] == ["a", "b"] and page["previous"] is None
    rest = api.get(page["next"]).json()
    assert [s["slug"] for s in rest["results"]] == ["c"] and rest["next"] is None


def test_retrieve__unknown__404_segment_not_found(problem, api):
    body = problem(api.get("/api/v1/segments/NOPE/"), 404, "segment_not_found")
    assert body["slugs"] == ["NOPE"]


def test_retrieve__slug_with_dot__found(api):
    Segment.objects.create(slug="exp.v2-a")
    assert api.get("/api/v1/segments/exp.v2-a/").json()["slug"] == "exp.v2-a"


def test_put__upsert__201_then_200(api):
    assert api.put("/api/v1/segments/S/", {"description": "d"}, format="json").status_code == 201
    response = api.put("/api/v1/segments/S/", {"description": "e"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "e"
    assert api.put("/api/v1/segments/T/").status_code == 201


def test_patch__fields__changed_and_rollout_applied(problem, api):
    users_seed(count=200, start=1, actor="t")
    Segment.objects.create(slug="S")
    body = api.patch("/api/v1/segments/S/", {"rollout_percent": 50}, format="json").json()
    assert body["rollout_percent"] == 50 and body["member_count"] == Membership.objects.count() > 0
    problem(api.patch("/api/v1/segments/NOPE/", {"description": "x"}, format="json"), 404, "segment_not_found")


def test_delete__members__204_and_history(problem, api):
    users_seed(count=100, start=1, actor="t")
    api.post("/api/v1/segments/", {"slug": "S", "rollout_percent": 100}, format="json")
    assert api.delete("/api/v1/segments/S/").status_code == 204
    assert not Membership.objects.exists()
    assert HistoryEvent.objects.filter(source="segment_deleted").count() == 100
    problem(api.delete("/api/v1/segments/S/"), 404, "segment_not_found")


def test_members__active_only__paginated_by_user_id(api):
    users_seed(count=5, start=1, actor="t")
    Segment.objects.create(slug="S")
    api.patch("/api/v1/users/3/segments/", {"add": ["S"]}, format="json")
    api.patch("/api/v1/users/1/segments/", {"add": [{"slug": "S", "ttl_seconds": 3600}]}, format="json")
    api.patch("/api/v1/users/2/segments/", {"add": ["S"]}, format="json")
    Membership.objects.filter(user_id=2).update(expires_at="2000-01-01T00:00:00Z")

    body = api.get("/api/v1/segments/S/members/").json()

    assert [m["user_id"] for m in body["results"]] == [1, 3]
    assert set(body["results"][0]) == {"user_id", "added_at", "expires_at", "source"}
    assert body["results"][0]["expires_at"].endswith("Z") and body["results"][1]["expires_at"] is None


def test_rollout__dry_run_then_apply__counts_match(problem, api):
    users_seed(count=1000, start=1000, actor="t")
    Segment.objects.create(slug="AVITO_VOICE_MESSAGES")
    dry = api.post("/api/v1/segments/AVITO_VOICE_MESSAGES/rollout/", {"percent": 20, "dry_run": True}, format="json")
    assert dry.json()["added"] > 0 and not Membership.objects.exists()
    done = api.post("/api/v1/segments/AVITO_VOICE_MESSAGES/rollout/", {"percent": 20}, format="json").json()
    assert done == {"slug": "AVITO_VOICE_MESSAGES", "percent": 20, "added": dry.json()["added"], "removed": 0}
    problem(api.post("/api/v1/segments/NOPE/rollout/", {"percent": 20}, format="json"), 404, "segment_not_found")
    problem(api.post("/api/v1/segments/S/rollout/", {"percent": 101}, format="json"), 400, "validation_error")
