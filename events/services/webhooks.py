"""Webhook management: create (the secret is returned once), change, enable (undelivered events are
sent again), delete, ping. Delivery itself is events/services/delivery.py. `webhook_fields_check` is the
one check of a webhook's fields, for the API and the admin alike."""

import base64
import json
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.db.models.functions import Now
from rest_framework import serializers

from core.errors import ServiceError, ValidationFailed
from events.models import Event, Message, Webhook
from events.services.addresses import AddressRefused, url_check
from segments.errors import SegmentNotFound
from segments.fields import MAX_SLUGS, parse_slug
from segments.models import Segment

FIELDS = ("url", "description", "event_types", "segments", "enabled")
CREATE_LOCK_KEY = 7_146_917_265  # any constant; webhooks are created one at a time, so the cap holds
EVENT_TYPES = [choice for choice, _ in Event.Type.choices]
MAX_URL = Webhook._meta.get_field("url").max_length
MAX_DESCRIPTION = Webhook._meta.get_field("description").max_length


class WebhookNotFound(ServiceError):
    status, code, title = 404, "webhook_not_found", "Webhook not found"

    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"Unknown webhook: {webhook_id}", webhook_id=webhook_id)


def secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _url_errors(url) -> list[str]:
    if not isinstance(url, str) or len(url) > MAX_URL:
        return [f"A URL of at most {MAX_URL} characters."]
    try:
        URLValidator(schemes=["http", "https"])(url)
        url_check(url)
    except ValidationError as exc:
        return list(exc.messages)
    except AddressRefused as exc:
        return [str(exc)]
    return []


def _list_errors(name: str, values, parse) -> list[str]:
    if not isinstance(values, list | tuple):
        return [f"A list of {name} (empty: all)."]
    errors = []
    for value in values:
        try:
            parse(value)
        except serializers.ValidationError as exc:
            errors.extend(str(message) for message in exc.detail)
    return errors


def _event_type(value) -> None:
    if value not in EVENT_TYPES:
        raise serializers.ValidationError(f"Unknown event type {str(value)[:40]!r}: one of {', '.join(EVENT_TYPES)}.")


def webhook_fields_check(**fields) -> dict:
    """The given webhook fields (any of FIELDS) as they are stored, lists without repeats and sorted:
    ValidationFailed naming every invalid field, then SegmentNotFound for slugs of no segment."""
    errors: dict[str, list[str]] = {}
    if "url" in fields:
        errors["url"] = _url_errors(fields["url"])
    if "description" in fields:
        description = fields["description"]
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            errors["description"] = [f"A text of at most {MAX_DESCRIPTION} characters."]
    if "event_types" in fields:
        errors["event_types"] = _list_errors("event types", fields["event_types"], _event_type)
    if "segments" in fields:
        errors["segments"] = _list_errors("segment slugs", fields["segments"], parse_slug)
        if not errors["segments"] and len(fields["segments"]) > MAX_SLUGS:
            errors["segments"] = [f"At most {MAX_SLUGS} segments."]
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        errors["enabled"] = ["true or false."]
    errors = {name: messages for name, messages in errors.items() if messages}
    if errors:
        raise ValidationFailed(errors)
    checked = {name: fields[name] for name in FIELDS if name in fields}
    for name in ("event_types", "segments"):
        if name in checked:
            checked[name] = sorted(set(checked[name]))
    if checked.get("segments"):
        unknown = set(checked["segments"]) - set(
            Segment.objects.filter(slug__in=checked["segments"]).values_list("slug", flat=True)
        )
        if unknown:
            raise SegmentNotFound(sorted(unknown))
    return checked


def webhook_create(*, url: str, description: str = "", event_types=None, segments=None) -> Webhook:
    """A new webhook receiving the events committed from now on; no event types or segments: all.
    At most SEGMENTER_WEBHOOK_MAX of them."""
    checked = webhook_fields_check(
        url=url,
        description=description,
        event_types=[] if event_types is None else event_types,
        segments=[] if segments is None else segments,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CREATE_LOCK_KEY])
        if Webhook.objects.count() >= settings.SEGMENTER_WEBHOOK_MAX:
            cap = settings.SEGMENTER_WEBHOOK_MAX
            raise ValidationFailed({"non_field_errors": [f"At most {cap} webhooks: delete one to add another."]})
        cursor.execute("SELECT coalesce(max(position), 0) FROM events_event")
        return Webhook.objects.create(**checked, secret=secret_new(), last_position=cursor.fetchone()[0])


def webhook_get(*, webhook_id: int) -> Webhook:
    try:
        return Webhook.objects.get(pk=webhook_id)
    except Webhook.DoesNotExist:
        raise WebhookNotFound(webhook_id) from None


def webhook_change(*, webhook_id: int, **changes) -> Webhook:
    """Change the given fields; enabling a disabled webhook sends its undelivered message again at once."""
    changes = webhook_fields_check(**changes)
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
