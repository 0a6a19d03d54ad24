import pytest

from events.models import Message, Webhook

URL = "http://93.184.215.14/hooks"  # a public address (no name to resolve)


@pytest.fixture
def webhook(api) -> dict:
    return api.post("/api/v1/webhooks/", {"url": URL, "event_types": ["membership.added"]}, format="json").json()


def test_create__public_url__201_with_a_whsec_secret_shown_once(api, webhook):
    assert webhook["secret"].startswith("whsec_")
    assert webhook["event_types"] == ["membership.added"] and webhook["enabled"] is True
    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [item["id"] for item in listed] == [webhook["id"]]
    assert "secret" not in listed[0] and "secret" not in api.get(f"/api/v1/webhooks/{webhook['id']}/").json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "ftp://93.184.215.14/",
        "http://93.184.215.14:0/",  # was taken, and delivered to port 80
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1: Python's is_global says yes
        "http://[64:ff9b::a01:203]/",  # NAT64 of 10.1.2.3
    ],
)
def test_create__private_loopback_link_local_or_not_http__400_nothing_created(api, problem, url):
    problem(api.post("/api/v1/webhooks/", {"url": url}, format="json"), 400, "validation_error")
    assert not Webhook.objects.exists()


# IPv6 forms that carry an IPv4 address and that Python's is_global calls global: each was taken.
IPV6_CARRYING_IPV4 = [
    "http://[::127.0.0.1]/",  # ::/96, IPv4-compatible
    "http://[::7f00:1]/",  # the same address written in hex
    "http://[::ffff:0:7f00:1]/",  # ::ffff:0:0:0/96, IPv4-translated (SIIT)
    "http://[::ffff:0:5db8:d70e]/",  # the same form of a public address: refused too, no receiver is there
    "http://[64:ff9b:1::7f00:1]/",  # 64:ff9b:1::/48, local-use NAT64
    "http://[64:ff9b:1:7f00:0:100::]/",  # 127.0.0.1 where a /48 NAT64 prefix puts it
    "http://[::ffff:127.0.0.1]/",  # ::ffff:0:0/96, IPv4-mapped (refused before too)
]


@pytest.mark.parametrize("url", IPV6_CARRYING_IPV4)
def test_create__ipv6_form_carrying_an_ipv4_address__400_nothing_created(api, problem, url):
    body = problem(api.post("/api/v1/webhooks/", {"url": url}, format="json"), 400, "validation_error")
    assert "private" in body["errors"]["url"][0]
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("url", ["http://[::ffff:93.184.215.14]/", "http://[64:ff9b::5db8:d70e]/"])
def test_create__ipv6_mapped_or_nat64_of_a_public_address__201(api, url):
    assert api.post("/api/v1/webhooks/", {"url": url}, format="json").status_code == 201


def test_create__private_allowed_by_setting__201(api, settings):
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True
    assert api.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/"}, format="json").status_code == 201


def test_management__read_only_token__403_even_to_read(read_only_token, anon, problem, webhook):
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    problem(anon.get("/api/v1/webhooks/"), 403, "permission_denied")
    problem(anon.post("/api/v1/webhooks/", {"url": URL}, format="json"), 403, "permission_denied")


def test_patch__fields_and_enabled__changed(api, webhook, segment):
    Webhook.objects.filter(pk=webhook["id"]).update(enabled=False)
    body = {"description": "crm", "segments": ["S1"], "event_types": [], "enabled": True}
    changed = api.patch(f"/api/v1/webhooks/{webhook['id']}/", body, format="json").json()
    assert (changed["description"], changed["segments"], changed["event_types"], changed["enabled"]) == (
        "crm", ["S1"], [], True
    )  # fmt: skip


@pytest.mark.parametrize(
    "body", [{"enabled": "true"}, {"event_types": ["nope"]}, {"url": "http://127.0.0.1/"}, {"secret": "x"}]
)
def test_patch__invalid__400_unchanged(api, problem, webhook, body):
    problem(api.patch(f"/api/v1/webhooks/{webhook['id']}/", body, format="json"), 400, "validation_error")
    assert Webhook.objects.get(pk=webhook["id"]).url == URL


def test_create__unknown_segment__404_segment_not_found_nothing_created(api, problem, segment):
    body = {"url": URL, "segments": ["S1", "NOPE", "ALSO_NOPE"]}
    assert problem(api.post("/api/v1/webhooks/", body, format="json"), 404, "segment_not_found")["slugs"] == [
        "ALSO_NOPE", "NOPE"
    ]  # fmt: skip
    assert not Webhook.objects.exists()


def test_patch__unknown_segment__404_segment_not_found_unchanged(api, problem, webhook):
    response = api.patch(f"/api/v1/webhooks/{webhook['id']}/", {"segments": ["NOPE"]}, format="json")
    assert problem(response, 404, "segment_not_found")["slugs"] == ["NOPE"]
    assert Webhook.objects.get(pk=webhook["id"]).segments == []


@pytest.mark.parametrize(
    "body",
    [
        {"segments": ["bad slug!"]},
        {"segments": "S1"},
        {"event_types": "membership.added"},
        {"event_types": ["nope"]},
        {"url": "http://93.184.215.14/" + "x" * 2000},
        {"description": "x" * 501},
    ],
)
def test_create__invalid_field__400_naming_it_nothing_created(api, problem, body):
    response = api.post("/api/v1/webhooks/", {"url": URL, **body}, format="json")
    assert set(problem(response, 400, "validation_error")["errors"]) == set(body)
    assert not Webhook.objects.exists()


def test_ping__202_and_a_ping_message_queued(api, webhook):
    assert api.post(f"/api/v1/webhooks/{webhook['id']}/test/").status_code == 202
    assert Message.objects.get(webhook_id=webhook["id"]).body == '{"type": "ping"}'


def test_unknown_webhook__404_problem(api, problem):
    problem(api.get("/api/v1/webhooks/999/"), 404, "webhook_not_found")
    problem(api.delete("/api/v1/webhooks/999/"), 404, "webhook_not_found")


def test_delete__204_and_gone(api, webhook):
    assert api.delete(f"/api/v1/webhooks/{webhook['id']}/").status_code == 204
    assert not Webhook.objects.exists()


def test_deliveries__none_yet__empty_page(api, webhook):
    assert api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries/").json()["results"] == []
