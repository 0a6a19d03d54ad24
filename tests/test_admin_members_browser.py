"""The admin's member flows in a real headless Chromium (the `page` fixture of tests/conftest.py): adding
many members with a TTL, an unknown id refused by name; a member export imported back into another
segment; the list of imports, API ones included. Screenshots go to test-output/admin-browser/."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.auth import token_create
from segments.models import Import, Membership
from segments.services import AddItem, import_run, memberships_update, segment_create
from users.models import User

pytestmark = pytest.mark.browser
PASSWORD = "a-long-browser-password"


@pytest.fixture
def pm_page(page, live_server, django_user_model):
    """The page, signed in to the admin as a superuser `pm`."""
    django_user_model.objects.create_superuser("pm", "", PASSWORD)
    User.objects.bulk_create([User(id=i) for i in range(1001, 1011)])
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "pm")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return page


def test_add_members_in_browser__many_ids_with_a_ttl_and_an_unknown_id__refused_by_name_then_added(
    pm_page, live_server
):
    page = pm_page
    segment = segment_create(slug="AVITO_DISCOUNT_30", actor="tests")
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    page.click('.object-tools a:text-is("Add members")')  # the sidebar reads "+ Add Memberships" too
    assert page.locator("#id_segment option[selected]").inner_text() == "AVITO_DISCOUNT_30"

    page.fill("#id_user_ids", "1001, 1002\n1003 99999")
    page.fill("#id_ttl", "2")
    page.select_option("#id_ttl_unit", "days")
    page.click("input[value='Add members']")
    assert "User 99999 is not registered; nothing was added." in page.inner_text(".field-user_ids .errorlist")
    page.screenshot(path=page.shots / "members-1-unknown-id.png", full_page=True)
    assert not Membership.objects.exists()

    page.fill("#id_user_ids", "1001, 1002\n1003")
    before = timezone.now()
    page.click("input[value='Add members']")
    page.wait_for_url(f"**/admin/segments/segment/{segment.pk}/change/")
    assert "3 users added to AVITO_DISCOUNT_30 for 2 days." in page.inner_text(".messagelist")
    page.screenshot(path=page.shots / "members-2-added-back-on-the-segment.png", full_page=True)
    expiries = dict(Membership.objects.values_list("user_id", "expires_at"))
    assert set(expiries) == {1001, 1002, 1003}
    assert all(before + timedelta(days=2) <= at <= timezone.now() + timedelta(days=2) for at in expiries.values())

    page.click("text=Members (3)")
    page.click("#result_list a >> text=1001")
    assert "1001 in AVITO_DISCOUNT_30" in page.inner_text(".breadcrumbs")
    assert page.csp_violations == []


def test_export_import_and_imports_list_in_browser__round_trip_and_api_import_listed_with_unknown_ids(
    pm_page, live_server
):
    page = pm_page
    source = segment_create(slug="SPRING", actor="tests")
    copy = segment_create(slug="SPRING_COPY", actor="tests")
    memberships_update(user_id=1001, add=[AddItem(slug="SPRING")], remove=[], source="api", actor="setup")
    until = datetime(2035, 1, 1, tzinfo=UTC)
    memberships_update(user_id=1002, add=[AddItem(slug="SPRING", expires_at=until)], remove=[], source="api", actor="x")

    page.goto(f"{live_server.url}/admin/segments/segment/{source.pk}/change/")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    exported = download.value.path().read_bytes()
    assert exported.startswith(b"user_id,expires_at,source,added_at\n")

    page.goto(f"{live_server.url}/admin/segments/segment/{copy.pk}/change/")
    page.click("text=Import CSV")
    page.set_input_files("#id_file", {"name": "SPRING-members.csv", "mimeType": "text/csv", "buffer": exported})
    page.check("input[name=mode][value=add]")
    page.click("input[value=Import]")
    assert "Queued" in page.inner_text("#import-status")
    import_run(Import.objects.get().pk)  # as the worker would; the page sees it on its next reload
    page.wait_for_selector("#import-status:has-text('Import applied')")
    assert page.inner_text("#count-added") == "2"
    page.screenshot(path=page.shots / "members-3-export-imported-back.png", full_page=True)
    assert dict(Membership.objects.filter(segment=copy).values_list("user_id", "expires_at")) == {
        1001: None,
        1002: until,
    }

    # An import by a data pipeline through the API, in this process: an API request served by live_server
    # leaves its thread's database connection open, which would outlive the test database.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(name='pipeline')[1]}")
    answer = api.generic(
        "POST", "/api/v1/segments/SPRING_COPY/imports/", b"1003\n5001\n5002\n", content_type="text/csv"
    )
    assert answer.status_code == 202
    import_run(answer.json()["id"])

    page.goto(f"{live_server.url}/admin/segments/segment/{copy.pk}/change/")
    page.click("#content-main >> text=Imports")
    page.wait_for_url(f"**/admin/segments/import/?segment_id={copy.pk}")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "pipeline" in rows.nth(0).inner_text() and "3/3 (100%)" in rows.nth(0).inner_text()
    assert "pm" in rows.nth(1).inner_text() and "succeeded (add)" in rows.nth(1).inner_text()
    page.screenshot(path=page.shots / "members-4-imports-list.png", full_page=True)
    rows.nth(0).locator("a").first.click()
    page.wait_for_selector(".field-unknown_ids")
    assert "5001, 5002" in page.inner_text(".field-unknown_ids")
    assert page.locator("input[name=_save]").count() == 0
    page.screenshot(path=page.shots / "members-5-import-detail.png", full_page=True)
    assert page.csp_violations == []
