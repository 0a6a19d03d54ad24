"""A webhook's filters: its messages hold the events it wants, and only those (events/services/filters.py)."""

import json

import pytest

from events.services.delivery import message_build
from events.services.log import events_sequence
from events.services.webhooks import webhook_create
from segments.services import AddItem, memberships_update, segment_create, segment_update

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("event_types", "segments", "expected"),
    [
        (
            (),
            (),
            {
                ("membership.added", "A"),
                ("membership.added", "B"),
                ("membership.removed", "A"),
                ("segment.updated", "B"),
            },
        ),
        (("membership.removed",), (), {("membership.removed", "A")}),
        ((), ("B",), {("membership.added", "B"), ("segment.updated", "B")}),
        (("membership.added", "segment.updated"), ("B",), {("membership.added", "B"), ("segment.updated", "B")}),
        (("segment.deleted",), (), set()),
    ],
)
def test_message_build__filters__the_events_it_wants(users, event_types, segments, expected):
    segment_create(slug="A", actor="t")
    segment_create(slug="B", actor="t")
    events_sequence()  # the segments' creation is numbered before the webhook starts
    webhook = webhook_create(url="http://93.184.215.14/hooks", event_types=event_types, segments=segments)
    memberships_update(user_id=1, add=[AddItem(slug="A"), AddItem(slug="B")], remove=[], source="api", actor="t")
    memberships_update(user_id=1, add=[], remove=["A"], source="api", actor="t")
    segment_update(slug="B", description="changed", actor="t")
    events_sequence()

    message = message_build(webhook)

    sent = set() if message is None else {(e["type"], e["segment"]) for e in json.loads(message.body)["events"]}
    assert sent == expected
    webhook.refresh_from_db()
    assert message_build(webhook) is None  # every position passed, wanted or not
