"""Sending the event log to webhooks: per webhook one message at a time, in position order.

`webhook_deliver_next` holds a transaction-level advisory lock on the webhook while it builds or
picks its oldest undelivered message, POSTs it (the whole answer within SEGMENTER_WEBHOOK_TIMEOUT,
10 s) and records the attempt. A second worker skips a webhook another one is sending to; a worker
killed mid-send rolls everything back (no attempt, no position passed) and the next run sends the
same message, with the same `webhook-id` (`msg_<webhook>_<first position>`) and body, again: within
about 17 s, once the dead worker's job is retried (core/tasks.py `retry_stalled_jobs`). A worker
whose host is lost mid-send closes nothing: the server ends its session once it has been idle in
that transaction for IDLE_FACTOR × the timeout (30 s), which frees the lock for the next worker.
Receivers de-duplicate by event id.

A success that took more than SLOW_FRACTION of the timeout pauses the webhook for as long again
(`paused_until`): a receiver that answers slowly is sent to at most half the time, and its slot, its
database connection and the receiver itself get a rest. A failure waits `retry_delay` instead.
"""

import http.client
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.fields import DateTimeField
from standardwebhooks.webhooks import Webhook as Signer

from events.models import MEMBERSHIP_EVENT_TYPES, Delivery, Message, Webhook
from events.services.addresses import AddressRefused, address_resolve, url_parts
from events.services.filters import wanted_sql

BATCH = 1000  # events per message at most
IDLE_FACTOR = 3  # the delivery transaction's idle_in_transaction_session_timeout, in timeouts
MAX_DELAY = 3600.0  # seconds between retries at most
DELIVERY_LOCK = 71_469  # advisory lock class (the key is the webhook id): one sender per webhook
SLOW_FRACTION = 0.5  # a success slower than this part of the timeout pauses its webhook as long again
EVENT_COLUMNS = ("id", "type", "user_id", "segment", "at", "source", "actor", "changes")
_at = DateTimeField()


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 1, 2, 4, … up to an hour."""
    return min(2.0 ** (attempts - 1), MAX_DELAY)


def event_json(row: dict) -> dict:
    """An event as API.md shows it: membership events with user, source and actor; segment events with changes."""
    at = _at.to_representation(row["at"])
    event = {"id": f"evt_{row['id']}", "type": row["type"], "segment": row["segment"], "at": at}
    if row["type"] in MEMBERSHIP_EVENT_TYPES:
        event.update(user_id=row["user_id"], source=row["source"], actor=row["actor"])
    else:
        event["actor"] = row["actor"]
        if row["changes"] is not None:
            event["changes"] = row["changes"] if isinstance(row["changes"], dict) else json.loads(row["changes"])
    return event


def message_build(webhook: Webhook) -> Message | None:
    """The next message of up to BATCH events after the webhook's last position that match its filters;
    None when there are none. Positions of events the filters skip are passed over too."""
    columns = ", ".join(f"e.{name}" for name in EVENT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH top AS (SELECT coalesce(max(position), 0) AS last FROM events_event)
            SELECT top.last, e.position, {columns} FROM top LEFT JOIN LATERAL (
                SELECT * FROM events_event e
                WHERE e.position > %(after)s AND e.position <= top.last
                  AND {wanted_sql("e", "%(types)s::jsonb", "%(slugs)s::jsonb")}
                ORDER BY e.position LIMIT %(batch)s
            ) e ON true
            """,
            {
                "after": webhook.last_position,
                "types": json.dumps(webhook.event_types),
                "slugs": json.dumps(webhook.segments),
                "batch": BATCH,
            },
        )
        rows = cursor.fetchall()
    last = rows[0][0]
    events = [dict(zip(EVENT_COLUMNS, row[2:], strict=True)) for row in rows if row[1] is not None]
    upto = rows[-1][1] if len(events) == BATCH else last
    if upto <= webhook.last_position:
        return None
    first = rows[0][1] if events else None
    webhook.last_position = upto
    webhook.save(update_fields=["last_position"])
    if not events:
        return None
    body = json.dumps({"type": "events", "events": [event_json(event) for event in events]}, separators=(",", ":"))
    return Message.objects.create(webhook=webhook, msg_id=f"msg_{webhook.pk}_{first}", body=body)


class Deadline:
    """Cuts the connection it watches once `seconds` have passed since it was made, whatever it is doing
    then (connecting, sending, reading a trickle): a socket's timeout bounds each operation, this all of them."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.passed = False
        self._socket: socket.socket | None = None  # a duplicate: shutting it down shuts the connection
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def connect(self, address: tuple[str, int], source) -> socket.socket:
        """A connection to `address` within the time left, watched from now on."""
        sock = socket.create_connection(address, max(self.at - time.monotonic(), 0.001), source)
        with self._lock:
            if self.passed:
                sock.close()
                raise TimeoutError("connected too late")
            self._socket = sock.dup()
        return sock

    def _cut(self) -> None:
        with self._lock:
            self.passed = True
            if self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed by the other side already

    def close(self) -> None:
        with self._lock:
            self._timer.cancel()
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def message_send(webhook: Webhook, message: Message) -> tuple[int | None, str]:
    """POST the message, signed; (status code or None, error). The connection goes to the address that
    was checked, whatever the name resolves to a moment later; the whole answer, its body to the last
    byte, must come within SEGMENTER_WEBHOOK_TIMEOUT seconds of connecting: a 2xx whose body is cut by
    the deadline, or ends before its Content-Length, is a failure."""
    try:
        scheme, host, port = url_parts(webhook.url)
        address = address_resolve(host, port)
    except AddressRefused as exc:
        return None, str(exc)
    timeout = settings.SEGMENTER_WEBHOOK_TIMEOUT
    deadline = Deadline(timeout)
    connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    client = connection_class(host, port, timeout=timeout)
    client._create_connection = lambda _address, _timeout, source: deadline.connect((address, port), source)
    sent_at = datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "segmenter-webhooks",
        "webhook-id": message.msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Signer(webhook.secret).sign(message.msg_id, sent_at, message.body),
    }
    parts = urlsplit(webhook.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        client.request("POST", target, body=message.body.encode(), headers=headers)
        response = client.getresponse()
        while response.read(65536):  # the whole body, kept nowhere; the deadline's cut ends it too
            pass
        deadline.close()
        if deadline.passed:  # cut: what was read is not the whole answer, whatever its status said
            raise TimeoutError
        if response.length:  # closed by the receiver before the Content-Length it announced
            raise http.client.IncompleteRead(b"", response.length)
        return response.status, "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        if deadline.passed:
            return None, f"TimeoutError: no whole answer within {timeout:g} s"
        return None, f"{type(exc).__name__}: {exc}"[:500]
    finally:
        deadline.close()
        client.close()


def webhook_deliver_next(webhook_id: int) -> bool:
    """Send the webhook's next due message once; True when it was delivered (more may follow).

    The transaction, and the webhook's lock with it, ends on the server if this process goes silent in it
    (a lost host) for IDLE_FACTOR timeouts; SET LOCAL, so it is safe behind a transaction pooler."""
    idle_ms = round(IDLE_FACTOR * settings.SEGMENTER_WEBHOOK_TIMEOUT * 1000)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('idle_in_transaction_session_timeout', %s, true), pg_try_advisory_xact_lock(%s, %s)",
            [str(idle_ms), DELIVERY_LOCK, webhook_id],
        )
        if not cursor.fetchone()[1]:
            return False
        webhook = Webhook.objects.filter(pk=webhook_id, enabled=True).first()
        if webhook is None or (webhook.paused_until is not None and webhook.paused_until > timezone.now()):
            return False
        message = webhook.messages.filter(delivered_at__isnull=True).order_by("id").first() or message_build(webhook)
        if message is None or message.next_attempt_at > timezone.now():
            return False
        started = time.perf_counter()
        status_code, error = message_send(webhook, message)
        seconds = time.perf_counter() - started
        message.attempts += 1
        Delivery.objects.create(
            message=message,
            attempt=message.attempts,
            status_code=status_code,
            error=error,
            duration_ms=round(seconds * 1000),
        )
        now = timezone.now()
        delivered = not error
        if delivered:
            message.delivered_at = now
            webhook.failing_since = None
            if seconds > SLOW_FRACTION * settings.SEGMENTER_WEBHOOK_TIMEOUT:
                webhook.paused_until = now + timedelta(seconds=seconds)
        else:
            message.next_attempt_at = now + timedelta(seconds=retry_delay(message.attempts))
            webhook.failing_since = webhook.failing_since or now
            if now - webhook.failing_since >= timedelta(hours=settings.SEGMENTER_WEBHOOK_RETRY_HOURS):
                webhook.enabled = False
        message.save(update_fields=["attempts", "delivered_at", "next_attempt_at"])
        Webhook.objects.filter(pk=webhook.pk).update(
            failing_since=webhook.failing_since, enabled=webhook.enabled, paused_until=webhook.paused_until
        )
        return delivered


def webhooks_due() -> list[int]:
    """Ids of enabled webhooks, not paused, with events past their last position or a due undelivered message."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT w.id FROM events_webhook w
            WHERE w.enabled AND (w.paused_until IS NULL OR w.paused_until <= now()) AND (
                EXISTS (SELECT 1 FROM events_message m WHERE m.webhook_id = w.id AND m.delivered_at IS NULL
                        AND m.next_attempt_at <= now())
                OR w.last_position < (SELECT coalesce(max(position), 0) FROM events_event))
            ORDER BY w.id
            """
        )
        return [row[0] for row in cursor.fetchall()]
