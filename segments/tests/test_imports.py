from datetime import UTC, datetime

import pytest

from core.errors import SegmentNotFound
from segments.models import HistoryEvent, Membership, Segment
from segments.services import memberships_import, rollout_apply
from segments.services.imports import MAX_PROBLEMS
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment():
    User.objects.bulk_create([User(id=i) for i in range(1, 11)])
    return Segment.objects.create(slug="IMPORTED")


def run(lines, mode="add", **kwargs):
    return memberships_import(slug="IMPORTED", lines=lines, mode=mode, actor="pm", **kwargs)


def members() -> dict[int, datetime | None]:
    return dict(Membership.objects.filter(segment__slug="IMPORTED").values_list("user_id", "expires_at"))


def test_memberships_import__add_mixed_file__counts_each_kind_and_writes_history(segment):
    memberships_import(slug="IMPORTED", lines=["2"], mode="add", actor="earlier")
    result = run([b"user_id,expires_at\n", b"1\n", b"2\n", b"\n", b"3,2030-01-01T00:00:00Z\n", b"99\n", b"1\n"])

    assert result.applied
    assert (result.lines, result.changed, result.unchanged, result.unknown_users, result.repeated, result.invalid) == (
        7,
        2,
        1,
        1,
        1,
        0,
    )
    assert result.problems == [(6, "unknown user 99")]
    assert members() == {1: None, 2: None, 3: datetime(2030, 1, 1, tzinfo=UTC)}
    events = HistoryEvent.objects.filter(actor="pm").order_by("user_id")
    assert list(events.values_list("user_id", "segment_slug", "operation", "source")) == [
        (1, "IMPORTED", "added", "import"),
        (3, "IMPORTED", "added", "import"),
    ]


def test_memberships_import__invalid_lines__nothing_applied_and_problems_by_line(segment):
    lines = ["1", "abc", "2,yesterday", "3,2030-01-01T00:00:00", "4,2000-01-01T00:00:00Z", "5,6,7", "0", "42"]

    result = run(lines)

    assert not result.applied
    assert (result.invalid, result.changed, result.unknown_users) == (6, 0, 1)
    assert [line for line, _ in result.problems] == [2, 3, 4, 5, 6, 7, 8]
    assert "in the past" in dict(result.problems)[5]
    assert members() == {}
    assert not HistoryEvent.objects.exists()


def test_memberships_import__many_problems__lists_the_first_by_line(segment):
    result = run(["x"] * (MAX_PROBLEMS + 5))

    assert result.invalid == MAX_PROBLEMS + 5
    assert [line for line, _ in result.problems] == list(range(1, MAX_PROBLEMS + 1))


def test_memberships_import__remove__removes_members_and_counts_non_members(segment):
    run(["1", "2", "3"])

    result = run(["1\r\n", "2\n", "5\n", "77\n"], mode="remove")

    assert result.applied
    assert (result.changed, result.unchanged, result.unknown_users) == (2, 1, 1)
    assert members() == {3: None}
    assert HistoryEvent.objects.filter(operation="removed", source="import", actor="pm").count() == 2


def test_memberships_import__generator_in_small_batches__all_lines_staged(segment):
    User.objects.bulk_create([User(id=i) for i in range(11, 2000)])

    result = run((f"{i}\n".encode() for i in range(1, 2001)), batch_size=7)

    assert (result.changed, result.unknown_users, result.lines) == (1999, 1, 2000)
    assert len(members()) == 1999


def test_memberships_import__utf8_bom_and_bad_bytes__bom_skipped_bad_line_reported(segment):
    result = run([b"\xef\xbb\xbf1\n", b"\xff\xfe\n"])

    assert result.problems == [(2, "not UTF-8 text")]
    assert not result.applied


def test_memberships_import__rollout_member__becomes_manual_and_keeps_expiry(segment):
    rollout_apply(slug="IMPORTED", percent=100, actor="pm")

    result = run(["4,2031-01-01T00:00:00Z"])

    assert (result.changed, result.unchanged) == (0, 1)
    membership = Membership.objects.get(user_id=4, segment=segment)
    assert (membership.source, membership.expires_at) == ("manual", None)


def test_memberships_import__unknown_segment__raises(segment):
    with pytest.raises(SegmentNotFound):
        memberships_import(slug="NOPE", lines=["1"], mode="add", actor="pm")


def test_memberships_import__twice_in_one_transaction__staging_table_reused(segment):
    assert run(["1"]).changed == 1
    assert run(["1", "2"]).changed == 1
