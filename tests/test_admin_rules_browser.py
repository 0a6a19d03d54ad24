"""A segment's rule edited in a real headless Chromium (the `signed_in_page` fixture of tests/conftest.py): an
error shown at the field with the bad node's path, fixed, the preview's counts confirmed, the rule shown as
text; the segment explained on a user's page, then the user's attributes edited. Screenshots go to
test-output/admin-browser/."""

import json

import pytest

from segments.services import segment_create
from users.attribute_writes import user_attributes_write

pytestmark = pytest.mark.browser

MOSCOW = {"attribute": "city", "op": "in", "value": ["Moscow"]}


def test_rule_in_browser__error_with_its_path_fixed_previewed_saved_and_shown_as_text(signed_in_page, live_server):
    page = signed_in_page
    cities = {1: "Moscow", 2: "Moscow", 3: "Saint Petersburg", 4: "Kazan"}
    for user_id, city in cities.items():
        attributes = {"city": city, "app_version": "6.4"}
        user_attributes_write(user_id=user_id, attributes=attributes, merge=False, register=True, actor="tests")
    segment = segment_create(slug="RU_CAPITALS", rule={"all": [MOSCOW]}, actor="tests")
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")

    cities_rule = {**MOSCOW, "value": ["Moscow", "Saint Petersburg"]}
    bad = {"all": [cities_rule, {"attribute": "app_version", "op": "version_gte", "value": 6}]}
    page.fill("#id_rule", json.dumps(bad, indent=2))
    page.click("input[name=_save]")
    assert page.inner_text(".field-rule .errorlist").startswith("rule.all[1].value: ")
    page.screenshot(path=page.shots / "rule-1-error-with-path.png", full_page=True)

    fixed = {"all": [cities_rule, {"attribute": "app_version", "op": "version_gte", "value": "6.2"}]}
    page.fill("#id_rule", json.dumps(fixed, indent=2))
    page.click("input[name=_save]")
    text = "city in [Moscow, Saint Petersburg] and app_version ≥ 6.2"
    assert page.inner_text("#rule-text") == text
    counts = [page.inner_text(f"#rule-{name}") for name in ("matching", "added", "removed")]
    assert counts == ["3", "1", "0"]
    page.screenshot(path=page.shots / "rule-2-preview-counts.png", full_page=True)

    page.click("input[value='Yes, save the rule']")
    page.wait_for_url("**/admin/segments/segment/")
    assert f"Rule saved: {text}" in page.inner_text(".messagelist")
    assert text in page.inner_text("#result_list")
    page.screenshot(path=page.shots / "rule-3-saved-list.png", full_page=True)

    page.goto(f"{live_server.url}/admin/users/user/3/change/")
    page.fill("#id_explain", "RU_CAPITALS")
    page.click("input[value=Explain]")
    assert page.inner_text("#explain-member") == "yes" and page.inner_text("#explain-rule") == "yes"
    page.screenshot(path=page.shots / "rule-4-user-explained.png", full_page=True)

    page.click("text=Edit attributes")
    page.fill("#id_attributes", '{"city": ["Kazan", 7]}')
    page.click("input[value='Save attributes']")
    assert page.inner_text(".field-attributes .errorlist").startswith("attributes.city[1]: ")
    page.screenshot(path=page.shots / "rule-5-attributes-error.png", full_page=True)
    page.fill("#id_attributes", '{"city": "Kazan", "app_version": "6.4"}')
    page.click("input[value='Save attributes']")
    page.wait_for_url("**/admin/users/user/3/change/")
    assert "Entered no segment. Left: RU_CAPITALS." in page.inner_text(".messagelist")
    assert page.csp_violations == []
