"""The admin's rules and attributes: a segment's rule edited as JSON (errors at the field with the node's
path), confirmed with the preview's counts and shown as text; a user's attributes edited through the API's
write; why a user is or is not in a segment."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from segments.models import HistoryEvent, Membership, Segment
from segments.services import is_covered, segment_create
from users.attribute_writes import user_attributes_get, user_attributes_write

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


def test_segment_change__rule_and_percent_changed__preview_counts_at_the_new_percent(admin_client, people):
    segment = segment_create(slug="CITY", rule=MOSCOW, actor="setup")
    url = reverse("admin:segments_segment_change", args=[segment.pk])
    data = {"description": "", "rollout_percent": "50", "rule": json.dumps(RULE), "_save": "1"}
    covered = {user_id for user_id in (1, 2, 4) if is_covered("CITY", user_id, Decimal(50))}

    preview = admin_client.post(url, data)
    admin_client.post(url, {**data, "_rollout_confirmed": "1"})

    counts = preview.context["preview"]
    assert (counts.matching, counts.would_add, counts.would_remove) == (
        3,
        len(covered - {1, 2, 3}),
        3 - len(covered & {1, 2}),
    )
    assert members("CITY") == covered
    assert Segment.objects.get(pk=segment.pk).rollout_percent == 50


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


def test_user_page__attributes_shown_and_an_edit_link(admin_client, people):
    body = admin_client.get(reverse("admin:users_user_change", args=[4])).content.decode()

    assert "&quot;city&quot;: &quot;Saint Petersburg&quot;" in body
    assert reverse("admin:users_user_attributes", args=[4]) in body


def test_user_attributes__replaced__rule_segments_entered_and_left_in_the_message(admin_client, people):
    segment_create(slug="CITY", rule=RULE, actor="setup")
    segment_create(slug="KAZAN", rule={"attribute": "city", "op": "eq", "value": "Kazan"}, actor="setup")
    url = reverse("admin:users_user_attributes", args=[1])

    form = admin_client.get(url)
    saved = admin_client.post(url, {"attributes": '{"city": "Kazan"}'}, follow=True)

    assert "&quot;app_version&quot;: &quot;6.4&quot;" in form.content.decode()
    assert "Attributes of user 1 saved. Entered: KAZAN. Left: CITY." in saved.content.decode()
    assert members("KAZAN") == {1, 5} and members("CITY") == {2, 4}
    assert HistoryEvent.objects.filter(user_id=1, segment_slug="KAZAN", actor="admin", source="rule").exists()


def test_user_attributes__bad_value__error_at_the_field_with_its_path_and_nothing_written(admin_client, people):
    url = reverse("admin:users_user_attributes", args=[1])

    bad = admin_client.post(url, {"attributes": '{"city": {"name": "Kazan"}}'})
    not_json = admin_client.post(url, {"attributes": "city=Kazan"})

    assert bad.context["form"].errors["attributes"][0].startswith("attributes.city: ")
    assert not_json.context["form"].errors["attributes"][0].startswith("Not JSON: ")
    assert user_attributes_get(user_id=1)[0]["city"] == "Moscow"


def test_user_attributes__staff_without_the_permission__refused_and_no_link(client, people, django_user_model):
    staff = django_user_model.objects.create_user("viewer", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user", content_type__app_label="users"))
    client.force_login(staff)

    page = client.get(reverse("admin:users_user_change", args=[1]))
    refused = client.post(reverse("admin:users_user_attributes", args=[1]), {"attributes": "{}"})

    assert page.status_code == 200 and reverse("admin:users_user_attributes", args=[1]) not in page.content.decode()
    assert refused.status_code == 403
    assert user_attributes_get(user_id=1)[0]["city"] == "Moscow"


def test_user_page__explain_a_segment__membership_explains_fields(admin_client, people):
    segment_create(slug="CITY", rule=RULE, actor="setup")
    url = reverse("admin:users_user_change", args=[3])

    old_app = admin_client.get(url, {"explain": "CITY"})
    unknown = admin_client.get(url, {"explain": "NOPE"})

    explanation = old_app.context["explanation"]
    assert (explanation.member, explanation.rule_matches, explanation.in_rollout) == (False, False, True)
    body = old_app.content.decode()
    assert 'id="explain-member">no<' in body and 'id="explain-rule">no<' in body
    assert 'id="explain-rollout">yes<' in body and 'id="explain-excluded">no<' in body
    assert "NOPE" in str(unknown.context["explain_form"].errors["explain"])
