"""The webhook admin: the API's one check of a webhook's fields (`webhook_fields_check`), and a new
webhook's secret shown once on its own page, never in a cookie."""

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.cookie import CookieStorage
from django.urls import reverse

from events.models import Delivery, Message, Webhook
from events.services.webhooks import EVENT_TYPES
from segments.models import Segment

URL = "http://93.184.215.14/hooks"  # a public address (no name to resolve)
ADD = reverse("admin:events_webhook_add")
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def _form(**fields) -> dict:
    """The form as a browser posts it: a checkbox or picked segment is one value of its name, none is no value."""
    return {"url": URL, "description": "", "event_types": [], "segments": [], **fields}


def _messages(response, rf) -> list[str]:
    """The messages a response leaves in Django's messages cookie, decoded as anyone holding it can."""
    cookie = response.cookies.get(CookieStorage.cookie_name)
    if cookie is None or not cookie.value:
        return []
    return [message.message for message in CookieStorage(rf.get("/"))._decode(cookie.value) or []]


def test_add__secret__shown_once_on_its_own_page_and_in_no_cookie(admin_client, rf, segment):
    response = admin_client.post(ADD, _form(event_types=["membership.added"], segments=["S1"]))

    secret = Webhook.objects.get().secret
    assert not any(secret in message for message in _messages(response, rf))
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert response.content.decode().count(secret) == 1
    changelist = admin_client.get(reverse("admin:events_webhook_changelist"))
    change = admin_client.get(reverse("admin:events_webhook_change", args=[Webhook.objects.get().pk]))
    assert secret not in changelist.content.decode() and secret not in change.content.decode()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event_types": ["membership.added", "nope"]}, "event_types"),  # a hand-made POST: not a checkbox
        ({"event_types": ["membership.adde"]}, "event_types"),
        ({"segments": ["bad slug!"]}, "segments"),
        ({"segments": ["S1", "UNKNOWN"]}, "segments"),
        ({"url": "http://127.0.0.1/"}, "url"),  # was refused with an error and "added successfully"
        ({"url": "ftp://93.184.215.14/"}, "url"),
        ({"description": "x" * 501}, "description"),
    ],
)
def test_add__invalid_field__form_error_nothing_stored(admin_client, segment, fields, field):
    response = admin_client.post(ADD, _form(**fields))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert "added successfully" not in response.content.decode()
    assert not Webhook.objects.exists()


def test_add__nothing_checked_or_picked__stored_as_all(admin_client, db):
    response = admin_client.post(ADD, _form())

    assert response.status_code == 200, response.context["adminform"].form.errors
    webhook = Webhook.objects.get()
    assert (webhook.event_types, webhook.segments) == ([], [])


def test_add__known_types_and_segments__stored_sorted_without_repeats(admin_client, segment):
    fields = _form(event_types=["segment.created", "membership.added", "segment.created"], segments=["S1", "S1"])

    admin_client.post(ADD, fields)

    webhook = Webhook.objects.get()
    assert (webhook.event_types, webhook.segments) == (["membership.added", "segment.created"], ["S1"])


def test_change__unknown_segment__form_error_unchanged(admin_client, segment):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x", segments=["S1"])

    response = admin_client.post(
        reverse("admin:events_webhook_change", args=[webhook.pk]), _form(segments=["S1", "GONE"])
    )

    assert response.status_code == 200 and "GONE" in str(response.context["adminform"].form.errors["segments"])
    assert Webhook.objects.get().segments == ["S1"]


def test_change__valid__saved_through_the_service(admin_client, segment):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x")

    response = admin_client.post(
        reverse("admin:events_webhook_change", args=[webhook.pk]),
        _form(description="crm", event_types=["membership.removed"], segments=["S1"], enabled="on"),
    )

    assert response.status_code == 302
    webhook.refresh_from_db()
    assert (webhook.description, webhook.event_types, webhook.segments) == ("crm", ["membership.removed"], ["S1"])


def test_add_page__event_types_are_checkboxes_and_segments_a_picker(admin_client, segment):
    Segment.objects.create(slug="S2")

    form = admin_client.get(ADD).context["adminform"].form

    html = str(form["event_types"])
    assert all(f'type="checkbox" name="event_types" value="{name}"' in html for name in EVENT_TYPES)
    assert [value for value, _ in form.fields["segments"].choices] == ["S1", "S2"]
    assert "selectfilter" in str(form["segments"])


def test_change_page__filter_naming_a_deleted_segment__shown_picked_as_deleted(admin_client, segment):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x", segments=["GONE", "S1"])

    form = admin_client.get(reverse("admin:events_webhook_change", args=[webhook.pk])).context["adminform"].form

    assert ("GONE", "GONE (deleted)") in form.fields["segments"].choices
    assert form["segments"].value() == ["GONE", "S1"]


def test_change__enabled_unchecked_then_checked__disabled_then_enabled_with_replay(admin_client, db):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x")
    message = Message.objects.create(webhook=webhook, msg_id="msg_1_1", body="{}", next_attempt_at=FAR)
    change = reverse("admin:events_webhook_change", args=[webhook.pk])

    admin_client.post(change, _form())
    assert Webhook.objects.get().enabled is False

    admin_client.post(change, _form(enabled="on"))
    assert Webhook.objects.get().enabled is True
    message.refresh_from_db()
    assert message.next_attempt_at < FAR  # sent again at once, as the API's enabling does


def test_disable_action__selected_webhooks__disabled(admin_client, db):
    webhooks = [Webhook.objects.create(url=URL, secret="whsec_x") for _ in range(2)]

    response = admin_client.post(
        reverse("admin:events_webhook_changelist"),
        {"action": "disable", "_selected_action": [webhooks[0].pk]},
    )

    assert response.status_code == 302
    assert list(Webhook.objects.order_by("pk").values_list("enabled", flat=True)) == [False, True]


def test_ping_button__post__queues_a_ping_message_and_says_so(admin_client, rf, db):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x")

    response = admin_client.post(reverse("admin:events_webhook_ping", args=[webhook.pk]))

    assert response.status_code == 302 and response["Location"].endswith(f"/webhook/{webhook.pk}/change/")
    assert [json.loads(body) for body in Message.objects.values_list("body", flat=True)] == [{"type": "ping"}]
    assert any("Ping queued" in message for message in _messages(response, rf))


def test_ping_button__get_unknown_or_view_only_user__refused_nothing_queued(
    admin_client, client, django_user_model, db
):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x")
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_webhook"))
    client.force_login(viewer)
    ping = reverse("admin:events_webhook_ping", args=[webhook.pk])

    assert admin_client.get(ping).status_code == 405
    assert admin_client.post(reverse("admin:events_webhook_ping", args=[webhook.pk + 1])).status_code == 404
    assert client.post(ping).status_code == 403
    assert "send-ping" not in client.get(reverse("admin:events_webhook_change", args=[webhook.pk])).content.decode()
    assert not Message.objects.exists()


def test_change_page__links_to_the_webhooks_deliveries(admin_client, db):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x")

    page = admin_client.get(reverse("admin:events_webhook_change", args=[webhook.pk])).content.decode()

    assert f"/admin/events/delivery/?message__webhook__id__exact={webhook.pk}" in page


@pytest.fixture
def deliveries(db) -> list[Delivery]:
    """A delivery to each of two webhooks."""
    made = []
    for n in (1, 2):
        webhook = Webhook.objects.create(url=f"{URL}/{n}", secret="whsec_x")
        message = Message.objects.create(
            webhook=webhook, msg_id=f"msg_{n}_ping", body=json.dumps({"type": "ping", "n": n})
        )
        made.append(Delivery.objects.create(message=message, attempt=1, status_code=204, duration_ms=3))
    return made


def test_deliveries__filtered_by_webhook__only_its_own_with_a_webhook_column(admin_client, deliveries):
    webhook = deliveries[0].message.webhook

    response = admin_client.get(
        reverse("admin:events_delivery_changelist"), {"message__webhook__id__exact": webhook.pk}
    )

    assert list(response.context["cl"].result_list) == [deliveries[0]]
    page = response.content.decode()
    assert f'<td class="field-webhook"><a href="/admin/events/webhook/{webhook.pk}/change/"' in page
    assert f"{webhook.pk}: {webhook.url}" in page  # the filter's choice
    assert response.context["cl"].opts.verbose_name_plural == "deliveries"


def test_delivery_page__payload_shown_and_nothing_editable(admin_client, deliveries):
    response = admin_client.get(reverse("admin:events_delivery_change", args=[deliveries[0].pk]))

    page = response.content.decode()
    assert "&quot;n&quot;: 1" in page and "msg_1_ping" in page
    assert response.context["adminform"].form.fields == {} and 'name="_save"' not in page


def test_deliveries__add_change_delete_and_bulk_delete__refused_nothing_changes(admin_client, deliveries):
    delivery = deliveries[0]
    changelist = reverse("admin:events_delivery_changelist")

    assert admin_client.get(reverse("admin:events_delivery_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:events_delivery_delete", args=[delivery.pk]), {"post": "yes"}).status_code
        == 403
    )
    admin_client.post(reverse("admin:events_delivery_change", args=[delivery.pk]), {"attempt": "9"})
    admin_client.post(changelist, {"action": "delete_selected", "post": "yes", "_selected_action": [delivery.pk]})

    assert admin_client.get(changelist).context["action_form"] is None  # no actions, bulk delete neither
    assert list(Delivery.objects.order_by("pk").values_list("pk", "attempt")) == [(d.pk, 1) for d in deliveries]


def test_webhook_delete__with_deliveries__deleted_with_them(admin_client, deliveries):
    webhook = deliveries[0].message.webhook

    response = admin_client.post(reverse("admin:events_webhook_delete", args=[webhook.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert list(Delivery.objects.all()) == [deliveries[1]]
