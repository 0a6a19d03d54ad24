"""Receivers that answer 2xx, but slowly, take nothing from the rest of the worker's work: a real
`manage.py worker`, real receivers on 127.0.0.1, a dozen webhooks whose receiver answers just within the
timeout with a backlog of messages each, and one webhook whose receiver answers at once."""

import io
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from events.models import Webhook
from events.services.delivery import webhook_deliver_next, webhooks_due
from events.services.webhooks import webhook_create, webhook_ping
from segments.models import HistoryEvent, Import, Membership, Segment
from segments.services import import_create, rollout_apply, segment_create
from users.services import users_register

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_WEBHOOKS = 12  # three times the worker's 4 job slots
TIMEOUT = {"SEGMENTER_WEBHOOK_TIMEOUT": "2", "SEGMENTER_WEBHOOK_ALLOW_PRIVATE": "true"}
# The contract's 2 s, plus room for a loaded machine (2 cores shared with other test runs): the worker polls
# for jobs every 0.5 s and a job's thread may wait for a core. Starved, each waited 10 s and more.
BOUND = timedelta(seconds=5)


def db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_worker__a_dozen_slow_2xx_receivers__ttl_sweep_import_and_a_healthy_webhook_keep_their_latency(
    receiver, slow_receiver, start_worker, settings
):
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True
    slow_receiver.delay = 1.6  # a 2xx after 1.6 s: a success, within the 2 s timeout
    users_register(user_ids=list(range(1, 6001)), actor="t")
    for slug in ("A", "B", "C"):
        segment_create(slug=slug, actor="t")
    for _ in range(SLOW_WEBHOOKS):
        webhook_create(url=slow_receiver.url, segments=["A"])
    healthy = webhook_create(url=receiver.url, segments=["B"])
    rollout_apply(slug="A", percent=Decimal(100), actor="t")  # 6,000 events: 6 messages for each slow webhook
    start_worker(**TIMEOUT)
    assert wait_for(lambda: len(slow_receiver.posts) >= 4, 30)  # the slow deliveries are under way

    expires_at = db_now() + timedelta(seconds=1.5)
    Membership.objects.create(user_id=1, segment=Segment.objects.get(slug="C"), expires_at=expires_at)
    webhook_ping(webhook_id=healthy.pk)
    queued, _ = import_create(slug="B", body=io.BytesIO(b"1\n2\n"), format="csv", mode="add", actor="t")
    asked_at = db_now()
    seen: dict[str, object] = {}

    def all_seen() -> bool:
        now = db_now()
        if "ttl" not in seen and HistoryEvent.objects.filter(source="ttl").exists():
            seen["ttl"] = now - expires_at
        if "ping" not in seen and any(b'"ping"' in body for _, body in receiver.posts):
            seen["ping"] = now - asked_at
        if "import" not in seen and Import.objects.get(pk=queued.pk).status == Import.Status.SUCCEEDED:
            seen["import"] = now - asked_at
        return len(seen) == 3

    wait_for(all_seen, 30)
    assert len(slow_receiver.posts) < SLOW_WEBHOOKS * 6  # the slow backlog was still being sent meanwhile
    assert set(seen) == {"ttl", "ping", "import"}, seen
    assert all(late < BOUND for late in seen.values()), seen

    def sent_to_each_slow_webhook() -> Counter:  # webhook-id: msg_<webhook>_<first position>
        return Counter(headers["webhook-id"].split("_")[1] for headers, _ in slow_receiver.posts)

    # Each slow webhook takes its turn: a message every 3.2 s (1.6 s answers, each followed by as long a pause).
    assert wait_for(lambda: sorted(sent_to_each_slow_webhook().values())[0] >= 2, 20), sent_to_each_slow_webhook()
    assert len(sent_to_each_slow_webhook()) == SLOW_WEBHOOKS


def test_webhook__2xx_after_more_than_half_the_timeout__paused_as_long_before_its_next_message(slow_receiver, settings):
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True
    settings.SEGMENTER_WEBHOOK_TIMEOUT = 1
    slow_receiver.delay = 0.7
    webhook = webhook_create(url=slow_receiver.url)
    webhook_ping(webhook_id=webhook.pk)
    webhook_ping(webhook_id=webhook.pk)
    assert webhook_deliver_next(webhook.pk) is True
    answered_at = timezone.now()
    assert webhook_deliver_next(webhook.pk) is False  # paused: the second ping waits
    assert webhook.pk not in webhooks_due()
    assert len(slow_receiver.posts) == 1
    paused_until = Webhook.objects.get(pk=webhook.pk).paused_until
    assert timedelta(seconds=0.5) < paused_until - answered_at < timedelta(seconds=1.5)
    assert wait_for(lambda: webhook.pk in webhooks_due(), 5)
    assert timezone.now() >= paused_until
    slow_receiver.delay = 0.2  # under half the timeout: no pause after it
    assert webhook_deliver_next(webhook.pk) is True
    assert len(slow_receiver.posts) == 2
    assert Webhook.objects.get(pk=webhook.pk).paused_until == paused_until  # in the past: no pause
