"""The address check at send time: a webhook stored with a URL the check now refuses (made before the rule,
or with SEGMENTER_WEBHOOK_ALLOW_PRIVATE since turned off) gets no request; the attempt is logged as refused."""

import pytest

from events.models import Delivery, Webhook
from events.services.delivery import webhook_deliver_next
from events.services.webhooks import webhook_ping


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/",
        "http://[::7f00:1]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b:1::7f00:1]/",
        "http://[64:ff9b:1:7f00:0:100::]/",
    ],
)
def test_send__ipv6_form_carrying_an_ipv4_address__refused_not_sent(db, url):
    webhook = Webhook.objects.create(url=url, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    webhook_ping(webhook_id=webhook.pk)

    assert webhook_deliver_next(webhook.pk) is False

    attempt = Delivery.objects.get(message__webhook=webhook)
    assert attempt.status_code is None
    assert attempt.error == f"The host {url[8:-2]} resolves to a private, loopback or link-local address."
