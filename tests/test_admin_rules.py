"""The admin's rules and attributes: a segment's rule edited as JSON (errors at the field with the node's
path), confirmed with the preview's counts and shown as text; a user's attributes edited through the API's
write; why a user is or is not in a segment."""

import json

import pytest
from django.urls import reverse

from segments.models import HistoryEvent, Membership, Segment
from segments.services import segment_create
from users.attribute_writes import user_attributes_write

pytestmark = pytest.mark.django_db

MOSCOW = {"all": [{"attribute": "city", "op": "in", "value": ["Moscow"]}]}
RULE = {
    "all": [
        {"attribute": "city", "op": "in", "value": ["Moscow", "Saint Petersburg"]},
        {"attribute": "app_version", "op": "version_gte", "value": "6.2"},
    ]
}


@pytest.fixture
def people():
    """Users 1-6: 1-3 in Moscow (3 on an old app), 4 in Saint Petersburg, 5 in Kazan, 6 without attributes."""
    cities = {1: "Moscow", 2: "Moscow", 3: "Moscow", 4: "Saint Petersburg", 5: "Kazan"}
    for user_id in range(1, 7):
        attributes = {"city": cities[user_id], "app_version": "5.0" if user_id == 3 else "6.4"} if user_id < 6 else {}
        user_attributes_write(user_id=user_id, attributes=attributes, merge=False, register=True, actor="setup")


def members(slug: str) -> set[int]:
    return set(Membership.objects.active().filter(segment__slug=slug).values_list("user_id", flat=True))


def test_segment_change__rule_with_a_bad_node__error_at_the_field_names_its_path(admin_client, people):
    segment = segment_create(slug="CITY", rule=MOSCOW, actor="setup")
    bad = {"all": [MOSCOW["all"][0], {"attribute": "app_version", "op": "version_gte", "value": 6}]}

    response = admin_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {"description": "", "rollout_percent": "100", "rule": json.dumps(bad)},
    )

    errors = response.context["adminform"].form.errors["rule"]
    assert response.status_code == 200
    assert len(errors) == 1 and errors[0].startswith("rule.all[1].value: ")
    assert 'class="errorlist' in response.content.decode()
    assert Segment.objects.get(pk=segment.pk).rule == MOSCOW


def test_segment_change__rule_not_json__error_at_the_field(admin_client, people):
    segment = segment_create(slug="CITY", actor="setup")

    response = admin_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {"description": "", "rollout_percent": "0", "rule": "{city: Moscow}"},
    )

    assert response.context["adminform"].form.errors["rule"][0].startswith("Not JSON: ")


def test_segment_change__rule_changed__preview_counts_then_saved_through_the_service(admin_client, people):
    segment = segment_create(slug="CITY", rule=MOSCOW, actor="setup")
    url = reverse("admin:segments_segment_change", args=[segment.pk])
    data = {"description": "", "rollout_percent": "100", "rule": json.dumps(RULE), "_save": "1"}

    preview = admin_client.post(url, data)

    assert preview.templates[0].name == "admin/segments/segment/rule_confirm.html"
    counts = preview.context["preview"]
    assert (counts.matching, counts.would_add, counts.would_remove) == (3, 1, 1)  # 1, 2, 4 match; 4 in, 3 out
    body = preview.content.decode()
    assert 'id="rule-added">1<' in body and 'id="rule-removed">1<' in body
    assert "city in [Moscow, Saint Petersburg] and app_version ≥ 6.2" in body
    assert members("CITY") == {1, 2, 3}  # nothing saved yet

    saved = admin_client.post(url, {**data, "_rollout_confirmed": "1"}, follow=True)

    assert members("CITY") == {1, 2, 4}
    assert Segment.objects.get(pk=segment.pk).rule == RULE
    assert "Rule saved: city in [Moscow, Saint Petersburg] and app_version ≥ 6.2" in saved.content.decode()
    assert set(HistoryEvent.objects.filter(segment_slug="CITY", actor="admin").values_list("user_id", "source")) == {
        (3, "rule"),
        (4, "rule"),
    }


def test_segment_add__with_a_rule__preview_creates_nothing_then_created_at_100_percent(admin_client, people):
    url = reverse("admin:segments_segment_add")
    data = {"slug": "NEW", "description": "", "rollout_percent": "0", "rule": json.dumps(RULE), "_save": "1"}

    preview = admin_client.post(url, data)

    counts = preview.context["preview"]
    assert (counts.matching, counts.would_add, counts.would_remove) == (3, 3, 0)
    assert not Segment.objects.filter(slug="NEW").exists()

    admin_client.post(url, {**data, "_rollout_confirmed": "1"})

    assert members("NEW") == {1, 2, 4}
    assert Segment.objects.get(slug="NEW").rollout_percent == 100


def test_segment_change__rule_cleared__preview_then_members_by_the_percent_alone(admin_client, people):
    segment = segment_create(slug="CITY", rule=MOSCOW, rollout_percent=100, actor="setup")
    url = reverse("admin:segments_segment_change", args=[segment.pk])
    data = {"description": "", "rollout_percent": "100", "rule": "", "_save": "1"}

    preview = admin_client.post(url, data)
    admin_client.post(url, {**data, "_rollout_confirmed": "1"})

    assert (preview.context["preview"].would_add, preview.context["preview"].would_remove) == (3, 0)
    assert Segment.objects.get(pk=segment.pk).rule is None
    assert members("CITY") == set(range(1, 7))


def test_segment_pages__rule_shown_as_text_in_list_and_change_page(admin_client, people):
    segment = segment_create(slug="CITY", rule=RULE, actor="setup")
    text = "city in [Moscow, Saint Petersburg] and app_version ≥ 6.2"

    listed = admin_client.get(reverse("admin:segments_segment_changelist")).content.decode()
    page = admin_client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()

    assert text in listed and text in page
    assert "&quot;version_gte&quot;" in page  # the editor holds the rule as JSON
