"""The event log's jobs on the task queue: numbering committed events in commit order, then sending them
to webhooks (one job per webhook at a time: its queueing lock and lock are the webhook's). Deliveries run
in slots of their own (core/jobs.py DELIVERY_QUEUE), one for each webhook there may be, so no receiver,
however slow, holds up the sweep, imports or another webhook; the jobs queued in the order they were due
take turns."""

import time

from procrastinate import exceptions
from procrastinate.contrib.django import app

from core.jobs import DELIVERY_QUEUE, job_round
from events.services.delivery import webhook_deliver_next, webhooks_due
from events.services.log import events_sequence

DELIVERY_SECONDS = 5.0  # a delivery job sends messages for this long at most, then leaves room to others


@app.periodic(cron="* * * * * *", periodic_id="sequence_events")
@app.task(name="sequence_events", queueing_lock="sequence_events", lock="sequence_events")
def sequence_events(timestamp: int) -> int:
    count = job_round("sequence_events", events_sequence)
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
