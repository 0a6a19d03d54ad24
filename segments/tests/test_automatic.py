"""Automatic membership (rules, rollouts, exclusions) kept equal to its definition: services/automatic.py."""

from decimal import Decimal

import pytest

from events.models import Event
from segments.models import Exclusion, HistoryEvent, Membership, Segment, SegmentRule
from segments.services import (
    AddItem,
    AutomaticResult,
    automatic_apply,
    automatic_verify,
    bucket,
    memberships_update,
    rollout_apply,
    segment_create,
    segment_update,
)
from users.models import UserAttributes
from users.services import users_register

pytestmark = pytest.mark.django_db

MOSCOW = {"attribute": "city", "op": "eq", "value": "Moscow"}
CITIES = {1: "Moscow", 2: "Kazan", 3: "Moscow", 4: None, 5: "Moscow"}


@pytest.fixture
def people(db):
    users_register(user_ids=list(CITIES), actor="tests")
    UserAttributes.objects.bulk_create(
        [UserAttributes(user_id=user_id, attributes={"city": city}) for user_id, city in CITIES.items() if city]
    )
    return CITIES


def members(slug: str) -> dict[int, str]:
    return dict(Membership.objects.active().filter(segment__slug=slug).values_list("user_id", "source"))


def history(slug: str) -> list[tuple]:
    return list(
        HistoryEvent.objects.filter(segment_slug=slug)
        .order_by("at", "id")
        .values_list("user_id", "operation", "source", "actor")
    )


def test_segment_create__rule__its_matching_users_join_as_rule_at_100_percent(people):
    segment = segment_create(slug="MSK", rule={"all": [MOSCOW]}, actor="pm")
    assert segment.rollout_percent == 100
    assert members("MSK") == {1: "rule", 3: "rule", 5: "rule"}
    assert history("MSK") == [(1, "added", "rule", "pm"), (3, "added", "rule", "pm"), (5, "added", "rule", "pm")]
    assert automatic_verify() == []


def test_rule__matches_empty__users_without_attributes_match(people):
    segment_create(slug="NO_CITY", rule={"attribute": "city", "op": "not_exists"}, actor="pm")
    assert members("NO_CITY") == {4: "rule"}


def test_attribute_change__user_evaluated__enters_and_leaves_with_details(people):
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    segment_create(slug="KZN", rule={"attribute": "city", "op": "eq", "value": "Kazan"}, actor="pm")
    UserAttributes.objects.filter(user_id=1).update(attributes={"city": "Kazan"})
    result = automatic_apply(actor="writer", user_ids=[1], rules_only=True, details=True)
    assert (result.added, result.removed, result.entered, result.left) == (1, 1, {1: ["KZN"]}, {1: ["MSK"]})
    assert history("KZN")[-1] == (1, "added", "rule", "writer")
    assert history("MSK")[-1] == (1, "removed", "rule", "writer")
    assert automatic_verify() == []


def test_rule_with_percent__members_are_matching_users_below_the_threshold(db):
    users_register(user_ids=list(range(1, 201)), actor="tests")
    UserAttributes.objects.bulk_create([UserAttributes(user_id=i, attributes={"n": i}) for i in range(1, 201)])
    segment_create(
        slug="HALF", rollout_percent=Decimal(50), rule={"attribute": "n", "op": "gt", "value": 100}, actor="pm"
    )
    expected = {i for i in range(101, 201) if bucket("HALF", i) < 5000}
    assert set(members("HALF")) == expected
    segment_update(slug="HALF", rollout_percent=Decimal(20), actor="pm")
    assert set(members("HALF")) == {i for i in expected if bucket("HALF", i) < 2000}
    assert automatic_verify() == []


def test_rule_set_on_rollout_segment__kept_members_switch_source_without_history(people):
    segment_create(slug="ALL", rollout_percent=Decimal(100), actor="pm")
    assert members("ALL") == dict.fromkeys(CITIES, "rollout")
    before = len(history("ALL"))
    segment_update(slug="ALL", rule=MOSCOW, actor="pm")
    assert members("ALL") == {1: "rule", 3: "rule", 5: "rule"}
    assert history("ALL")[before:] == [(2, "removed", "rule", "pm"), (4, "removed", "rule", "pm")]
    segment_update(slug="ALL", rule=None, actor="pm")
    assert members("ALL") == dict.fromkeys(CITIES, "rollout")
    assert not SegmentRule.objects.exists()
    assert automatic_verify() == []


def test_manual_member__rule_no_longer_matching__stays_manual(people):
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    memberships_update(user_id=2, add=[AddItem("MSK")], remove=[], source="api", actor="pm")
    memberships_update(user_id=1, add=[AddItem("MSK")], remove=[], source="api", actor="pm")
    UserAttributes.objects.filter(user_id=1).update(attributes={"city": "Kazan"})
    automatic_apply(actor="w", user_ids=[1, 2], rules_only=True)
    assert members("MSK") == {1: "manual", 2: "manual", 3: "rule", 5: "rule"}


def test_manual_removal_of_automatic_member__excluded__rollout_raising_does_not_add_it_back(people):
    segment_create(slug="R", rollout_percent=Decimal(100), actor="pm")
    memberships_update(user_id=3, add=[], remove=["R"], source="api", actor="pm")
    assert list(Exclusion.objects.values_list("user_id", "actor")) == [(3, "pm")]
    rollout_apply(slug="R", percent=Decimal(50), actor="pm")
    rollout_apply(slug="R", percent=Decimal(100), actor="pm")
    assert 3 not in members("R")
    assert automatic_verify() == []
    memberships_update(user_id=3, add=[AddItem("R")], remove=[], source="api", actor="pm")
    assert members("R")[3] == "manual"
    assert not Exclusion.objects.exists()


def test_manual_removal_of_manual_member__no_exclusion(people):
    segment_create(slug="S", actor="pm")
    memberships_update(user_id=3, add=[AddItem("S")], remove=[], source="api", actor="pm")
    memberships_update(user_id=3, add=[], remove=["S"], source="api", actor="pm")
    assert not Exclusion.objects.exists()


def test_registration__new_user_joins_the_rule_segments_it_matches(people):
    segment_create(slug="NO_CITY", rule={"not": {"attribute": "city", "op": "exists"}}, actor="pm")
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    users_register(user_ids=[9], actor="registrar")
    assert members("NO_CITY")[9] == "rule"
    assert 9 not in members("MSK")
    assert history("NO_CITY")[-1] == (9, "added", "rule", "registrar")


def test_dry_run__counts_what_applying_would_change(people):
    segment_create(slug="MSK", rule=MOSCOW, rollout_percent=Decimal(0), actor="pm")
    Segment.objects.filter(slug="MSK").update(rollout_percent=100)  # as if raised without applying
    assert automatic_apply(actor="pm", dry_run=True) == AutomaticResult(3, 0)
    assert members("MSK") == {}
    assert automatic_apply(actor="pm") == AutomaticResult(3, 0)
    assert members("MSK") == {1: "rule", 3: "rule", 5: "rule"}


def test_automatic_verify__stored_membership_differs__each_user_named(people, without_journal):
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    with without_journal():
        Membership.objects.filter(segment__slug="MSK", user_id=1).delete()
        Membership.objects.create(segment=Segment.objects.get(slug="MSK"), user_id=2, source="rule")
    assert automatic_verify() == [("MSK", 1, "missing"), ("MSK", 2, "extra")]


def test_segment_updated_event__rule_change__names_rule_not_its_compiled_form(people):
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    segment_update(slug="MSK", rule={"not": MOSCOW}, actor="pm")
    event = Event.objects.filter(type="segment.updated").latest("id")
    assert event.changes == {"rule": [MOSCOW, {"not": MOSCOW}]}


def test_attribute_change__segment_at_0_percent__its_rule_members_leave(people, without_journal):
    segment_create(slug="MSK", rule=MOSCOW, actor="pm")
    with without_journal():  # lowered past the services: its members are still there
        Segment.objects.filter(slug="MSK").update(rollout_percent=0)
    result = automatic_apply(actor="w", user_ids=[1, 2], rules_only=True, details=True)
    assert (result.removed, result.left) == (1, {1: ["MSK"]})
    assert set(members("MSK")) == {3, 5}
