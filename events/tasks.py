"""The event log's jobs on the task queue: numbering committed events in commit order, then sending them
to webhooks (one job per webhook at a time: its queueing lock and lock are the webhook's); its periodic purges
(core/jobs.py periodic_job). Deliveries wait on other hosts: they run in slots of their own (DELIVERY_QUEUE),
one for each webhook there may be (SEGMENTER_WEBHOOK_MAX), so no receiver, however slow, holds up the sweep,
imports or, each webhook sending one message at a time, another webhook; the jobs queued in the order they
were due take turns."""

import time

from django.conf import settings
from procrastinate import exceptions
from procrastinate.contrib.django import app

from core.jobs import periodic_job, queue_declare
from events.services.delivery import webhook_deliver_next, webhooks_due
from events.services.log import events_sequence
from events.services.received import events_purge, messages_purge

DELIVERY_QUEUE = queue_declare("deliveries", slots=lambda: settings.SEGMENTER_WEBHOOK_MAX)
DELIVERY_SECONDS = 5.0  # a delivery job sends messages for this long at most, then leaves room to others

# Events past SEGMENTER_EVENT_RETENTION_DAYS that every webhook has received, every 10 minutes.
purge_events = periodic_job("purge_events", events_purge, cron="*/10 * * * *")
# Webhook messages delivered before SEGMENTER_EVENT_RETENTION_DAYS, every 10 minutes, between purge_events.
purge_messages = periodic_job("purge_messages", messages_purge, cron="5-59/10 * * * *")


def events_sequence_and_deliveries_queue() -> int:
    """Number the committed events, then queue a delivery for each webhook with messages due; returns how many
    events were numbered."""
    count = events_sequence()
    for webhook_id in webhooks_due():
        lock = f"deliver_webhook_{webhook_id}"
        try:
            deliver_webhook.configure(queueing_lock=lock, lock=lock).defer(webhook_id=webhook_id)
        except exceptions.AlreadyEnqueued:
            pass  # its job is queued already
    return count


@app.task(name="deliver_webhook", queue=DELIVERY_QUEUE)
def deliver_webhook(webhook_id: int) -> int:
    """Send the webhook's due messages, in order, for up to DELIVERY_SECONDS; returns how many were delivered."""
    started, delivered = time.monotonic(), 0
    while time.monotonic() - started < DELIVERY_SECONDS and webhook_deliver_next(webhook_id):
        delivered += 1
    return delivered


sequence_events = periodic_job("sequence_events", events_sequence_and_deliveries_queue, cron="* * * * * *")
