"""The event log's retention: events older than SEGMENTER_EVENT_RETENTION_DAYS go once every webhook, enabled or
disabled, has received them (or leaves them out); delivered for real to a receiver on 127.0.0.1."""

import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from events.models import Delivery, Event, Message, Webhook
from events.services import received
from events.services.delivery import webhook_deliver_next
from events.services.log import events_sequence
from events.services.received import events_purge
from events.services.webhooks import webhook_change, webhook_create, webhook_delete
from segments.services import segment_create, segment_update

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True


def segments_created(*slugs: str) -> None:
    """One `segment.created` event each, numbered."""
    for slug in slugs:
        segment_create(slug=slug, actor="t")
    events_sequence()


def age(days: float, **filters) -> None:
    Event.objects.filter(**filters).update(at=F("at") - timedelta(days=days))


def positions() -> list[int | None]:
    return list(Event.objects.order_by("id").values_list("position", flat=True))


def deliver(webhook: Webhook) -> None:
    """Send the webhook's messages until one is not delivered (or none is left)."""
    while webhook_deliver_next(webhook.pk):
        pass


def test_purge__no_webhook__old_events_go_but_the_last_young_and_unnumbered_stay():
    segments_created("A", "B", "C", "D")
    age(8)
    segments_created("E")
    age(6, segment="E")  # younger than the 7 days
    segment_create(slug="F", actor="t")  # not numbered yet
    age(30, segment="F")
    assert events_purge() == 4
    assert positions() == [5, None]
    segments_created("G")  # the sequencer goes on after the last position
    assert positions() == [5, 6, 7]
    age(8)
    assert events_purge() == 2  # E and F; G is the last
    assert positions() == [7]


def test_purge__retention_setting__bounds_the_age(settings):
    segments_created("A", "B", "C")
    age(2)
    settings.SEGMENTER_EVENT_RETENTION_DAYS = 3
    assert events_purge() == 0
    settings.SEGMENTER_EVENT_RETENTION_DAYS = 1.5
    assert events_purge() == 2


def test_purge__undelivered_message__its_events_stay_until_delivered(receiver):
    webhook = webhook_create(url=receiver.url)
    segments_created("A", "B", "C")
    deliver(webhook)
    segments_created("D", "E", "F")
    receiver.failures = 1
    deliver(webhook)  # its message of D, E and F fails: its position passed F, but nothing was received
    age(8)
    assert events_purge() == 3
    assert positions() == [4, 5, 6]
    time.sleep(1.1)  # the retry is due after 1 s
    deliver(webhook)
    kept = [f"evt_{pk}" for pk in Event.objects.order_by("id").values_list("pk", flat=True)]
    assert [event["id"] for event in receiver.events()][-3:] == kept
    assert events_purge() == 2
    assert positions() == [6]


def test_purge__disabled_webhook_with_filters__keeps_what_it_needs_until_deleted(receiver, settings):
    settings.SEGMENTER_WEBHOOK_RETRY_HOURS = 0  # disabled at its first failure
    only = webhook_create(url=receiver.url, event_types=["segment.updated"])
    every = webhook_create(url=receiver.url)
    segment_create(slug="A", actor="t")  # 1
    webhook_change(webhook_id=only.pk, segments=["A"])  # once A exists; filters apply when read
    segment_create(slug="B", actor="t")  # 2
    segment_update(slug="A", description="a", actor="t")  # 3
    segment_update(slug="B", description="b", actor="t")  # 4
    events_sequence()
    receiver.failures = 1
    deliver(only)  # its message of event 3 fails: disabled, event 3 undelivered
    assert not Webhook.objects.get(pk=only.pk).enabled
    deliver(every)
    segment_update(slug="A", description="aa", actor="t")  # 5: `only` needs it
    segment_update(slug="B", description="bb", actor="t")  # 6: filtered out
    segment_create(slug="C", actor="t")  # 7: the last
    events_sequence()
    deliver(every)
    age(8)
    assert events_purge() == 4
    assert positions() == [3, 5, 7]
    webhook_delete(webhook_id=only.pk)  # a deleted webhook needs nothing
    assert events_purge() == 2
    assert positions() == [7]


def test_purge__enabled_webhook_behind__keeps_everything_after_what_it_received(receiver):
    behind = webhook_create(url=receiver.url)
    segments_created("A", "B")
    deliver(behind)
    segments_created("C", "D", "E")
    age(8)
    assert events_purge() == 2
    assert positions() == [3, 4, 5]


def test_purge__chunks__one_short_statement_each_until_a_young_event(monkeypatch):
    monkeypatch.setattr(received, "PURGE_CHUNK", 2)
    segments_created("A", "B", "C", "D", "E", "F", "G", "H")
    age(8)
    age(-8, segment__in=["F", "G", "H"])  # young again: positions 6 to 8
    with CaptureQueriesContext(connection) as queries:
        assert events_purge() == 5
    chunks = [query for query in queries if "DELETE FROM events_event" in query["sql"]]
    assert len(chunks) == 3  # 1-2, 3-4, then 5-6 holds a young event: the end
    assert positions() == [6, 7, 8]


def test_purge__explained__reads_events_by_their_position_index():
    segments_created("A", "B", "C")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        params = {"after": 0, "chunk": 10, "before": datetime.now(UTC)}
        cursor.execute("EXPLAIN " + received.PURGE_SQL, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on events_event" not in plan, plan


def test_purge_history__before_a_month__the_event_log_too_within_the_retention(utc):
    segments_created("A", "B", "C", "D")
    Event.objects.filter(segment__in=["A", "B"]).update(at=utc(2024, 5, 1))
    Event.objects.filter(segment="C").update(at=utc(2024, 6, 1))
    out = StringIO()
    call_command("purge_history", "--before", "2024-06", stdout=out)
    assert "event log: 2 events removed" in out.getvalue()
    assert positions() == [3, 4]


def test_purge_messages__delivered_before_the_retention__go_with_their_attempts(receiver, monkeypatch):
    monkeypatch.setattr(received, "MESSAGES_PURGE_CHUNK", 2)
    webhook = webhook_create(url=receiver.url)
    for slug in "ABCDE":  # a message each: B's delivered at its second attempt, E's not (it failed)
        segments_created(slug)
        receiver.failures = 1 if slug in "BE" else 0
        deliver(webhook)
        if slug == "B":
            time.sleep(1.1)  # the retry is due after 1 s
            deliver(webhook)
    messages = list(Message.objects.order_by("id"))
    assert [bool(message.delivered_at) for message in messages] == [True, True, True, True, False]
    Message.objects.filter(pk__in=[m.pk for m in messages[:3] + messages[4:]]).update(
        delivered_at=F("delivered_at") - timedelta(days=8), created_at=F("created_at") - timedelta(days=8)
    )
    assert Delivery.objects.filter(message=messages[1]).count() == 2  # B failed once, then delivered
    with CaptureQueriesContext(connection) as queries:
        assert received.messages_purge() == 3  # A, B and C: D is young, E undelivered
    assert len([query for query in queries if "DELETE FROM events_message" in query["sql"]]) == 2
    assert list(Message.objects.order_by("id")) == messages[3:]
    assert set(Delivery.objects.values_list("message_id", flat=True)) == {messages[3].pk, messages[4].pk}
    assert received.messages_purge() == 0
