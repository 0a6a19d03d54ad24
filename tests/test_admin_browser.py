"""The admin in a real headless Chromium (Debian's package at /usr/bin/chromium, no browser download).

Static files: the live_server fixture wraps the app in Django's StaticFilesHandler, which serves
the admin's CSS from the staticfiles finders; the test checks that the stylesheet really applies.
An import's progress page reloads itself: the test runs the import (as the worker would) while the
page waits, queued, and sees it finish on a reload. Screenshots go to test-output/admin-browser/.
Every page runs under the app's Content-Security-Policy: the `page` fixture (tests/conftest.py) records each violation
the browser reports (the `securitypolicyviolation` event and "Refused to ..." console messages) and
the tests assert none.
"""

from decimal import Decimal

import pytest

from segments.models import HistoryEvent, Import, Membership, Segment
from segments.services import import_run, is_covered
from users.models import User

pytestmark = pytest.mark.browser

USER_IDS = range(1, 1001)


def test_admin_in_browser__rollout_import_history_and_chart__all_shown(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("pm", "", "a-long-browser-password")
    User.objects.bulk_create([User(id=i) for i in USER_IDS])
    expected = sum(is_covered("BROWSER_TEN", i, Decimal(10)) for i in USER_IDS)

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "pm")
    page.fill("#id_password", "a-long-browser-password")
    page.click("input[type=submit]")
    header_color = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header_color not in ("", "rgba(0, 0, 0, 0)"), "the admin stylesheet did not load"

    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#id_slug", "BROWSER_TEN")
    page.fill("#id_description", "ten percent, made in a browser")
    page.fill("#id_rollout_percent", "10")
    page.click("input[name=_save]")
    assert page.inner_text("#rollout-added") == str(expected)
    page.screenshot(path=page.shots / "1-rollout-confirmation.png", full_page=True)
    page.click("text=Yes, apply the rollout")
    assert f"Rollout 10%: {expected} users added" in page.inner_text(".messagelist")
    segment = Segment.objects.get(slug="BROWSER_TEN")
    assert Membership.objects.filter(segment=segment).count() == expected

    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    page.click("text=Import CSV")
    outsiders = [i for i in USER_IDS if not is_covered("BROWSER_TEN", i, Decimal(10))][:3]
    csv = "".join(f"{i}\n" for i in outsiders) + "2000000\n"
    page.set_input_files("#id_file", {"name": "members.csv", "mimeType": "text/csv", "buffer": csv.encode()})
    page.check("input[name=mode][value=add]")
    page.click("input[value=Import]")
    # The upload lands on the import's progress page; no worker runs here, so it waits, queued.
    assert "Queued: waiting for the worker" in page.inner_text("#import-status")
    page.screenshot(path=page.shots / "2-import-queued.png", full_page=True)
    import_run(Import.objects.get().pk)  # as the worker would; the page sees it on its next reload
    page.wait_for_selector("#import-status:has-text('Import applied')", timeout=15_000)
    assert page.inner_text("#count-added") == "3"
    assert page.inner_text("#count-unknown") == "1"
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    page.screenshot(path=page.shots / "2-import-result.png", full_page=True)

    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    chart = page.locator("svg.members-chart")
    assert chart.is_visible()
    assert f"now {expected + 3}" in chart.get_attribute("aria-label")
    page.screenshot(path=page.shots / "3-segment-with-chart.png", full_page=True)

    page.click("text=Segment history")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == min(expected + 3, 100)
    assert page.locator("#result_list tbody tr", has_text="import").count() == 3
    page.screenshot(path=page.shots / "4-history.png", full_page=True)
    assert HistoryEvent.objects.filter(source="import", actor="pm").count() == 3
    assert page.csp_violations == []


def test_swagger_ui_in_browser__under_the_csp__operations_rendered(page, live_server):
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/users/{user_id}/segments/" in [path.replace("\u200b", "") for path in paths]
    page.click(".opblock-summary-path >> nth=0")  # an operation opens, drawn by Swagger UI's script
    page.wait_for_selector(".opblock-body")
    page.screenshot(path=page.shots / "5-swagger-ui.png", full_page=True)
    assert page.csp_violations == []
