"""The webhook admin: the API's one check of a webhook's fields (`webhook_fields_check`), and a new
webhook's secret shown once on its own page, never in a cookie."""

import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.urls import reverse

from events.models import Webhook

URL = "http://93.184.215.14/hooks"  # a public address (no name to resolve)
ADD = reverse("admin:events_webhook_add")


def _form(**fields) -> dict:
    return {"url": URL, "description": "", "event_types": "", "segments": "", **fields}


def _messages(response, rf) -> list[str]:
    """The messages a response leaves in Django's messages cookie, decoded as anyone holding it can."""
    cookie = response.cookies.get(CookieStorage.cookie_name)
    if cookie is None or not cookie.value:
        return []
    return [message.message for message in CookieStorage(rf.get("/"))._decode(cookie.value) or []]


def test_add__secret__shown_once_on_its_own_page_and_in_no_cookie(admin_client, rf, segment):
    response = admin_client.post(ADD, _form(event_types='["membership.added"]', segments='["S1"]'))

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
        ({"event_types": '"notalist"'}, "event_types"),  # was stored as a list of letters
        ({"event_types": '["membership.added", "nope"]'}, "event_types"),
        ({"event_types": "[1]"}, "event_types"),
        ({"segments": '["bad slug!"]'}, "segments"),
        ({"segments": '["S1", "UNKNOWN"]'}, "segments"),
        ({"segments": '{"S1": true}'}, "segments"),
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


@pytest.mark.parametrize("empty", ["", "[]"])
def test_add__empty_lists__stored_as_all(admin_client, rf, empty, db):
    response = admin_client.post(ADD, _form(event_types=empty, segments=empty))

    assert response.status_code == 200, response.context["adminform"].form.errors
    webhook = Webhook.objects.get()
    assert (webhook.event_types, webhook.segments) == ([], [])


def test_add__known_types_and_segments__stored_sorted_without_repeats(admin_client, segment):
    fields = _form(event_types='["segment.created", "membership.added", "segment.created"]', segments='["S1", "S1"]')

    admin_client.post(ADD, fields)

    webhook = Webhook.objects.get()
    assert (webhook.event_types, webhook.segments) == (["membership.added", "segment.created"], ["S1"])


def test_change__unknown_segment__form_error_unchanged(admin_client, segment):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x", segments=["S1"])

    response = admin_client.post(
        reverse("admin:events_webhook_change", args=[webhook.pk]), _form(segments='["S1", "GONE"]')
    )

    assert response.status_code == 200 and "GONE" in str(response.context["adminform"].form.errors["segments"])
    assert Webhook.objects.get().segments == ["S1"]


def test_change__valid__saved_through_the_service(admin_client, segment):
    webhook = Webhook.objects.create(url=URL, secret="whsec_x")

    response = admin_client.post(
        reverse("admin:events_webhook_change", args=[webhook.pk]),
        _form(description="crm", event_types='["membership.removed"]', segments='["S1"]'),
    )

    assert response.status_code == 302
    webhook.refresh_from_db()
    assert (webhook.description, webhook.event_types, webhook.segments) == ("crm", ["membership.removed"], ["S1"])
