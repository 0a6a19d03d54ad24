"""Attribute imports run by a real `manage.py worker`: a worker killed mid-import, the next one resuming it,
the users entering the rule segments their new attributes match, each once."""

import io
import json
import time

import pytest

from segments.models import HistoryEvent, Import, Membership
from segments.services import attribute_import_create, automatic_verify, segment_create
from users.models import UserAttributes
from users.services import users_seed

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def current() -> Import:
    return Import.objects.get()


def test_attribute_import__worker_killed_mid_import__resumed_each_line_once_and_rules_agree(
    start_worker, connections_ended
):
    lines = 6_000
    users_seed(count=lines // 2, start=1, actor="t")  # the other half registered by the import
    segment_create(slug="MSK", rule={"attribute": "city", "op": "eq", "value": "Moscow"}, actor="t")
    body = io.BytesIO(
        b"".join(
            json.dumps({"user_id": user_id, "attributes": {"city": "Moscow" if user_id % 2 else "Kazan"}}).encode()
            + b"\n"
            for user_id in range(1, lines + 1)
        )
    )
    queued, _ = attribute_import_create(body=body, format="ndjson", mode="merge", actor="pipeline")
    chunks = {"SEGMENTER_IMPORT_CHUNK_LINES": "200"}

    first = start_worker(**chunks)
    assert wait_for(lambda: current().done > 0, 30), first.lines
    first.process.kill()
    first.process.wait()
    connections_ended()
    at_kill = current()
    second = start_worker(**chunks)
    assert wait_for(lambda: current().status == Import.Status.SUCCEEDED, 40, interval=0.2), (current(), second.lines)

    finished = current()
    assert at_kill.status == Import.Status.RUNNING and 0 < at_kill.done < lines
    assert (finished.done, finished.count("created"), finished.count("updated")) == (lines, lines // 2, lines // 2)
    assert finished.count("entered") == lines // 2 and finished.count("left") == 0
    assert UserAttributes.objects.count() == lines
    moscow = set(range(1, lines + 1, 2))
    assert set(Membership.objects.filter(segment__slug="MSK").values_list("user_id", flat=True)) == moscow
    added = HistoryEvent.objects.filter(segment_slug="MSK", operation="added", source="rule", actor="pipeline")
    assert added.count() == added.values("user_id").distinct().count() == len(moscow)
    assert automatic_verify() == []
