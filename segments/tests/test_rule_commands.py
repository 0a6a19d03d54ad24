"""`manage.py rule`, `manage.py verify_segments` and the time sweep of relative rules."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from segments.models import HistoryEvent, Membership, Segment
from segments.services import relative_rules_apply, segment_create
from segments.tasks import relative_rules
from users.models import UserAttributes
from users.services import users_register

pytestmark = pytest.mark.django_db

MOSCOW = {"attribute": "city", "op": "eq", "value": "Moscow"}


@pytest.fixture
def people(db):
    users_register(user_ids=[1, 2, 3], actor="tests")
    UserAttributes.objects.bulk_create(
        [
            UserAttributes(user_id=1, attributes={"city": "Moscow"}),
            UserAttributes(user_id=2, attributes={"city": "Kazan"}),
        ]
    )


def test_rule__file__preview_printed_then_saved(people, tmp_path, capsys):
    segment_create(slug="S", actor="t")
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(MOSCOW))
    call_command("rule", "S", "--file", str(path), "--dry-run")
    assert "S: matching 1, would add 1, would remove 0" in capsys.readouterr().out
    assert Segment.objects.get().rule is None and not Membership.objects.exists()
    call_command("rule", "S", "--file", str(path))
    assert "rule saved, 100.00%" in capsys.readouterr().out
    assert list(Membership.objects.values_list("user_id", "source")) == [(1, "rule")]
    assert HistoryEvent.objects.get().actor == "manage.py rule"


def test_rule__stdin_and_clear(people, monkeypatch, capsys):
    segment_create(slug="S", rule=MOSCOW, actor="t")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"not": MOSCOW})))
    call_command("rule", "S", "--file", "-")
    assert set(Membership.objects.values_list("user_id", flat=True)) == {2, 3}
    call_command("rule", "S", "--clear")
    assert "would add 1, would remove 0" in capsys.readouterr().out
    assert set(Membership.objects.values_list("user_id", "source")) == {(1, "rollout"), (2, "rollout"), (3, "rollout")}


@pytest.mark.parametrize("text", ["{", json.dumps({"any": []})])
def test_rule__invalid__command_error_and_nothing_saved(people, tmp_path, text):
    segment_create(slug="S", actor="t")
    path = tmp_path / "rule.json"
    path.write_text(text)
    with pytest.raises(CommandError):
        call_command("rule", "S", "--file", str(path))
    assert Segment.objects.get().rule is None


def test_verify_segments__agreeing_then_differing__exit_1_naming_each(people, without_journal, capsys):
    segment_create(slug="S", rule=MOSCOW, actor="t")
    call_command("verify_segments")
    assert "agrees" in capsys.readouterr().out
    with without_journal():
        Membership.objects.all().delete()
    with pytest.raises(CommandError) as raised:
        call_command("verify_segments", "--slug", "S")
    assert raised.value.returncode == 1
    assert capsys.readouterr().out.splitlines() == ["S 1 missing"]
    with pytest.raises(CommandError):
        call_command("verify_segments", "--slug", "NOPE")


def test_relative_rules__time_sweep__joins_and_leaves_as_system(people):
    recent = {"attribute": "seen", "op": "after", "value": "-P30D"}
    segment_create(slug="RECENT", rule=recent, actor="t")
    segment_create(slug="MSK", rule=MOSCOW, actor="t")
    now = datetime.now(UTC)
    # Written past the API (no evaluation), as time passing would leave them: 1 seen now and not a member,
    # 3 seen 31 days ago and still a member.
    UserAttributes.objects.filter(user_id=1).update(attributes={"city": "Moscow", "seen": now.isoformat()})
    Membership.objects.filter(segment__slug="MSK").delete()
    UserAttributes.objects.create(user_id=3, attributes={"seen": (now - timedelta(days=31)).isoformat()})
    Membership.objects.create(user_id=3, segment=Segment.objects.get(slug="RECENT"), source="rule")
    assert relative_rules_apply() == 2
    assert list(Membership.objects.filter(segment__slug="RECENT").values_list("user_id", flat=True)) == [1]
    swept = HistoryEvent.objects.filter(segment_slug="RECENT", actor="system")
    assert sorted(swept.values_list("user_id", "operation", "source")) == [(1, "added", "rule"), (3, "removed", "rule")]
    assert not Membership.objects.filter(segment__slug="MSK").exists()  # only rules that read the time
    assert relative_rules.name == "relative_rules"
