"""The segment API's rules: `rule` on POST/PUT/PATCH, the preview, exclusions."""

import pytest

from segments.models import Exclusion, HistoryEvent, Membership, Segment
from segments.services import AddItem, automatic_verify, bucket, memberships_update, segment_create
from users.models import UserAttributes
from users.services import users_register

pytestmark = pytest.mark.django_db

MOSCOW = {"attribute": "city", "op": "eq", "value": "Moscow"}


@pytest.fixture
def people(db):
    users_register(user_ids=list(range(1, 31)), actor="tests")
    UserAttributes.objects.bulk_create(
        [UserAttributes(user_id=i, attributes={"city": "Moscow" if i % 2 else "Kazan"}) for i in range(1, 31)]
    )


def members(slug: str) -> dict[int, str]:
    return dict(Membership.objects.active().filter(segment__slug=slug).values_list("user_id", "source"))


def test_post__rule__segment_with_rule_and_100_percent_and_its_members(api, people):
    response = api.post("/api/v1/segments/", {"slug": "MSK", "rule": MOSCOW}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["rule"], body["rollout_percent"], body["member_count"]) == (MOSCOW, 100, 15)
    assert set(members("MSK").values()) == {"rule"}
    assert set(HistoryEvent.objects.filter(segment_slug="MSK").values_list("source", "actor")) == {("rule", "tests")}


def test_post__rule_outside_the_grammar__400_naming_the_node_and_nothing_saved(api, problem, people):
    rule = {"all": [MOSCOW, {"attribute": "age", "op": "gt", "value": "old"}]}
    body = problem(api.post("/api/v1/segments/", {"slug": "S", "rule": rule}, format="json"), 400, "validation_error")
    assert list(body["errors"]) == ["rule.all[1].value"]
    assert not Segment.objects.exists()


def test_patch__bad_rule__400_and_the_segment_unchanged(api, problem, people):
    api.post("/api/v1/segments/", {"slug": "S", "rule": MOSCOW}, format="json")
    response = api.patch("/api/v1/segments/S/", {"rule": {"any": []}, "description": "x"}, format="json")
    assert "rule.any" in problem(response, 400, "validation_error")["errors"]
    assert Segment.objects.get().rule == MOSCOW and Segment.objects.get().description == ""


def test_patch__rule_on_segment_at_0__sets_100_and_applies(api, people):
    api.post("/api/v1/segments/", {"slug": "S"}, format="json")
    response = api.patch("/api/v1/segments/S/", {"rule": MOSCOW}, format="json")
    assert (response.json()["rollout_percent"], response.json()["member_count"]) == (100, 15)
    response = api.patch("/api/v1/segments/S/", {"rule": None}, format="json")
    assert (response.json()["rule"], response.json()["member_count"]) == (None, 30)
    assert set(members("S").values()) == {"rollout"}
    assert automatic_verify() == []


def test_put__rule_with_percent__both_applied(api, people):
    response = api.put("/api/v1/segments/S/", {"rule": MOSCOW, "rollout_percent": 0}, format="json")
    assert response.status_code == 201
    assert (response.json()["rollout_percent"], response.json()["member_count"]) == (0, 0)
    response = api.put("/api/v1/segments/S/", {"rollout_percent": 100}, format="json")
    assert (response.status_code, response.json()["member_count"]) == (200, 15)


def test_preview__counts_and_sample__nothing_changes(api, read_only_token, people):
    segment_create(slug="S", actor="pm")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    response = api.post("/api/v1/segments/S/rule/preview/", {"rule": MOSCOW}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "matching": 15,
        "would_add": 15,
        "would_remove": 0,
        "sample_user_ids": list(range(1, 31, 2))[:20],
    }
    assert not Membership.objects.exists() and Segment.objects.get().rule is None


def test_preview__rule_replacing_another__removals_counted(api, people):
    segment_create(slug="S", rule=MOSCOW, actor="pm")
    response = api.post("/api/v1/segments/S/rule/preview/", {"rule": {"not": MOSCOW}}, format="json")
    assert response.json()["would_add"] == 15 and response.json()["would_remove"] == 15
    assert len(response.json()["sample_user_ids"]) == 15


def test_preview__bad_rule_or_unknown_segment__400_404(api, problem, people):
    segment_create(slug="S", actor="pm")
    response = api.post("/api/v1/segments/S/rule/preview/", {"rule": {"not": 1}}, format="json")
    assert "rule.not" in problem(response, 400, "validation_error")["errors"]
    problem(api.post("/api/v1/segments/T/rule/preview/", {"rule": MOSCOW}, format="json"), 404, "segment_not_found")


def test_exclusions__listed_and_deleted__user_evaluated_at_once(api, problem, people):
    segment_create(slug="S", rule=MOSCOW, actor="pm")
    memberships_update(user_id=3, add=[], remove=["S"], source="api", actor="pm")
    body = api.get("/api/v1/segments/S/exclusions/").json()
    assert [(item["user_id"], item["actor"]) for item in body["results"]] == [(3, "pm")]
    assert api.delete("/api/v1/segments/S/exclusions/3/").status_code == 204
    assert members("S")[3] == "rule" and not Exclusion.objects.exists()
    problem(api.delete("/api/v1/segments/S/exclusions/3/"), 404, "not_found")
    problem(api.delete("/api/v1/segments/T/exclusions/3/"), 404, "segment_not_found")


def test_exclusion__manual_add__ends_it(people):
    segment_create(slug="S", rule=MOSCOW, actor="pm")
    memberships_update(user_id=3, add=[], remove=["S"], source="api", actor="pm")
    memberships_update(user_id=3, add=[AddItem("S")], remove=[], source="api", actor="pm")
    assert not Exclusion.objects.exists() and members("S")[3] == "manual"


def test_explain__member_by_rule__each_part_answered(api, problem, people):
    segment_create(slug="S", rule=MOSCOW, rollout_percent=50, actor="pm")
    member = next(iter(members("S")))
    body = api.get(f"/api/v1/users/{member}/segments/S/").json()
    assert {key: body[key] for key in ("user_id", "segment", "member", "source", "rule_matches", "in_rollout")} == {
        "user_id": member,
        "segment": "S",
        "member": True,
        "source": "rule",
        "rule_matches": True,
        "in_rollout": True,
    }
    assert body["bucket"] == bucket("S", member) and body["excluded"] is False and body["added_at"]
    memberships_update(user_id=2, add=[], remove=["S"], source="api", actor="pm")
    body = api.get("/api/v1/users/2/segments/S/").json()
    assert (body["member"], body["source"], body["rule_matches"], body["excluded"]) == (False, None, False, False)
    problem(api.get("/api/v1/users/2/segments/NOPE/"), 404, "segment_not_found")
    problem(api.get("/api/v1/users/999/segments/S/"), 404, "user_not_found")


def test_explain__excluded_and_without_rule(api, people):
    segment_create(slug="R", rollout_percent=100, actor="pm")
    memberships_update(user_id=3, add=[], remove=["R"], source="api", actor="pm")
    body = api.get("/api/v1/users/3/segments/R/").json()
    assert (body["member"], body["rule_matches"], body["in_rollout"], body["excluded"]) == (False, None, True, True)
