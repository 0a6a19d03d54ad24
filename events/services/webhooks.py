"""Webhook management: create (the secret is returned once), change, enable (undelivered events are
sent again), delete, ping. Delivery itself is events/services/delivery.py."""

import base64
import json
import secrets
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now

from core.errors import ServiceError, ValidationFailed
from events.models import Event, Message, Webhook
from events.services.addresses import AddressRefused, url_check

FIELDS = ("url", "description", "event_types", "segments", "enabled")
CREATE_LOCK_KEY = 7_146_917_265  # any constant; webhooks are created one at a time, so the cap holds


class WebhookNotFound(ServiceError):
    status, code, title = 404, "webhook_not_found", "Webhook not found"

    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"Unknown webhook: {webhook_id}", webhook_id=webhook_id)


def secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _url_valid(url: str) -> None:
    try:
        url_check(url)
    except AddressRefused as exc:
        raise ValidationFailed({"url": [str(exc)]}) from None


def webhook_create(*, url: str, description: str = "", event_types=(), segments=()) -> Webhook:
    """A new webhook receiving the events committed from now on; at most SEGMENTER_WEBHOOK_MAX of them."""
    _url_valid(url)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CREATE_LOCK_KEY])
        if Webhook.objects.count() >= settings.SEGMENTER_WEBHOOK_MAX:
            cap = settings.SEGMENTER_WEBHOOK_MAX
            raise ValidationFailed({"non_field_errors": [f"At most {cap} webhooks: delete one to add another."]})
        cursor.execute("SELECT coalesce(max(position), 0) FROM events_event")
        return Webhook.objects.create(
            url=url,
            description=description,
            event_types=sorted(set(event_types)),
            segments=sorted(set(segments)),
            secret=secret_new(),
            last_position=cursor.fetchone()[0],
        )


def webhook_get(*, webhook_id: int) -> Webhook:
    try:
        return Webhook.objects.get(pk=webhook_id)
    except Webhook.DoesNotExist:
        raise WebhookNotFound(webhook_id) from None


def webhook_change(*, webhook_id: int, **changes) -> Webhook:
    """Change the given fields; enabling a disabled webhook sends its undelivered message again at once."""
    if "url" in changes:
        _url_valid(changes["url"])
    for name in ("event_types", "segments"):
        if name in changes:
            changes[name] = sorted(set(changes[name]))
    with transaction.atomic():
        found = list(Webhook.objects.raw("SELECT * FROM events_webhook WHERE id = %s FOR NO KEY UPDATE", [webhook_id]))
        if not found:
            raise WebhookNotFound(webhook_id)
        webhook = found[0]
        if changes.get("enabled") and not webhook.enabled:
            webhook.failing_since = None
            webhook.messages.filter(delivered_at__isnull=True).update(next_attempt_at=Now())
        for name, value in changes.items():
            setattr(webhook, name, value)
        webhook.save(update_fields=[*changes, "failing_since"])  # never last_position: the sender owns it
    return webhook


def webhook_delete(*, webhook_id: int) -> None:
    deleted, _ = Webhook.objects.filter(pk=webhook_id).delete()
    if not deleted:
        raise WebhookNotFound(webhook_id)


def webhook_ping(*, webhook_id: int) -> Message:
    """Queue a `ping` message, sent after the messages queued before it."""
    webhook = webhook_get(webhook_id=webhook_id)
    return Message.objects.create(
        webhook=webhook, msg_id=f"msg_{webhook.pk}_ping_{uuid.uuid4().hex}", body=json.dumps({"type": "ping"})
    )


EVENT_TYPES = [choice for choice, _ in Event.Type.choices]
