"""At most SEGMENTER_WEBHOOK_MAX webhooks: each worker process has one delivery slot for each."""

from events.models import Webhook

URL = "http://93.184.215.14/hooks"  # a public address (no name to resolve)


def test_create__at_the_cap__400_validation_error_nothing_created_until_one_is_deleted(api, problem, settings):
    settings.SEGMENTER_WEBHOOK_MAX = 2
    created = [api.post("/api/v1/webhooks/", {"url": URL}, format="json") for _ in range(2)]
    assert [response.status_code for response in created] == [201, 201]
    Webhook.objects.filter(pk=created[0].json()["id"]).update(enabled=False)  # a disabled one counts too
    body = problem(api.post("/api/v1/webhooks/", {"url": URL}, format="json"), 400, "validation_error")
    assert body["errors"] == {"non_field_errors": ["At most 2 webhooks: delete one to add another."]}
    assert Webhook.objects.count() == 2
    assert api.delete(f"/api/v1/webhooks/{created[0].json()['id']}/").status_code == 204
    assert api.post("/api/v1/webhooks/", {"url": URL}, format="json").status_code == 201
