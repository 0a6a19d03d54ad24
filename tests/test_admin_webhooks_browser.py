"""Webhooks and their deliveries in the admin, in a real headless Chromium (the `signed_in_page` fixture of
tests/conftest.py): event types as checkboxes and segments as a picker, the API's check refusing bad input
with no success message, none checked meaning all, disable and enable, a ping sent and its delivery shown
(read-only), and the index's order. Deliveries are sent as the worker would (`webhook_deliver_next`)."""

import json

import pytest

from events.models import Delivery, Webhook
from events.services.delivery import webhook_deliver_next
from segments.services import segment_create

pytestmark = pytest.mark.browser


@pytest.fixture
def private_receivers(settings):
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1


def _save_and_read_errors(page) -> str:
    page.click("input[name=_save]")
    return page.inner_text("#content-main")


def test_webhook_admin_in_browser__add_refuse_all_disable_enable_ping_deliveries(
    signed_in_page, live_server, receiver, private_receivers
):
    page = signed_in_page
    (
        segment_create(slug="S1", actor="tests"),
        segment_create(slug="S2", actor="tests"),
    )  # services: the journal knows who

    page.goto(f"{live_server.url}/admin/events/webhook/add/")
    page.fill("#id_url", "htp://93.184.215.14/hooks")  # a typo: no scheme the API accepts
    page.check("input[name=event_types][value='membership.added']")
    # A hand-made value where a checkbox was: the API's one check names it, nothing is saved.
    page.eval_on_selector("input[name=event_types][value='segment.created']", "box => box.value = 'segment.craeted'")
    page.check("input[name=event_types][value='segment.craeted']")
    shown = _save_and_read_errors(page)
    page.screenshot(path=page.shots / "6-webhook-refused.png", full_page=True)
    assert "Enter a valid URL." in shown and "Unknown event type 'segment.craeted'" in shown
    assert page.locator(".messagelist .success").count() == 0 and "successfully" not in shown
    assert not Webhook.objects.exists()

    page.goto(f"{live_server.url}/admin/events/webhook/add/")
    page.fill("#id_url", receiver.url)
    page.fill("#id_description", "CRM, S1 only")
    page.check("input[name=event_types][value='membership.added']")
    page.check("input[name=event_types][value='membership.removed']")
    page.select_option("#id_segments_from", "S1")
    page.click("#id_segments_add")
    page.screenshot(path=page.shots / "7-webhook-add.png", full_page=True)
    page.click("input[name=_save]")
    assert "signing secret" in page.inner_text("#content-main")
    crm = Webhook.objects.get()
    assert (crm.event_types, crm.segments) == (["membership.added", "membership.removed"], ["S1"])

    page.goto(f"{live_server.url}/admin/events/webhook/add/")
    page.fill("#id_url", receiver.url)
    page.click("input[name=_save]")
    every = Webhook.objects.exclude(pk=crm.pk).get()
    assert (every.event_types, every.segments) == ([], [])  # none checked, none picked: all

    page.goto(f"{live_server.url}/admin/events/webhook/")
    row = page.locator("#result_list tbody tr").filter(has_text="membership.added")
    assert "membership.added, membership.removed" in row.inner_text() and "S1" in row.inner_text()
    other = page.locator("#result_list tbody tr").filter(has_not_text="membership.added")
    assert [other.locator(f"td.field-{name}").inner_text() for name in ("types", "segment_filter")] == ["all", "all"]
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "disable")
    page.click("button[name=index]")
    assert "1 webhook(s) disabled" in page.inner_text(".messagelist")
    assert list(Webhook.objects.order_by("pk").values_list("enabled", flat=True)) == [False, True]
    page.screenshot(path=page.shots / "8-webhooks-list.png", full_page=True)

    page.goto(f"{live_server.url}/admin/events/webhook/{crm.pk}/change/")
    assert page.locator("#id_segments_to option").all_inner_texts() == ["S1"]
    page.check("#id_enabled")
    page.click("input[name=_save]")
    assert Webhook.objects.get(pk=crm.pk).enabled

    page.goto(f"{live_server.url}/admin/events/webhook/{crm.pk}/change/")
    page.click("#send-ping")
    assert "Ping queued" in page.inner_text(".messagelist")
    page.screenshot(path=page.shots / "9-webhook-pinged.png", full_page=True)
    assert webhook_deliver_next(crm.pk)  # as the worker would
    assert [json.loads(body) for _, body in receiver.posts] == [{"type": "ping"}]

    page.click(".object-tools >> text=Deliveries")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "204" in rows.inner_text()
    assert rows.locator("td.field-webhook a").get_attribute("title") == receiver.url
    assert page.locator("select[name=action]").count() == 0  # no actions, bulk delete neither
    assert page.locator(".object-tools >> text=Add").count() == 0
    page.screenshot(path=page.shots / "10-deliveries.png", full_page=True)
    rows.locator("th a").click()
    assert '"type": "ping"' in page.inner_text("pre.payload")
    assert page.locator("input[name=_save]").count() == 0 and page.locator("a.deletelink").count() == 0
    page.screenshot(path=page.shots / "11-delivery.png", full_page=True)
    assert Delivery.objects.get().status_code == 204
    assert page.csp_violations == []


def test_admin_index_in_browser__pm_objects_first_and_view_site_opens_the_api_docs(signed_in_page, live_server):
    page = signed_in_page

    page.goto(f"{live_server.url}/admin/")
    sections = page.locator("#content-main .module caption").all_inner_texts()
    assert [section.strip() for section in sections] == [
        "SEGMENTS",
        "USERS",
        "WEBHOOKS",
        "API ACCESS",
        "STAFF ACCOUNTS",
        "LOGIN LOCKOUT",
        "TASK QUEUE",
    ]
    page.screenshot(path=page.shots / "12-index.png", full_page=True)
    page.click("#user-tools >> text=View site")
    page.wait_for_selector(".opblock")
    assert page.url == f"{live_server.url}/api/docs/"
    assert page.csp_violations == []
