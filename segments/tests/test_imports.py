"""Imports as the worker runs them: checking, staging, chunks, modes, resuming (services/imports.py)."""

import io
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, connection
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import BodyTooLarge, MalformedJson, ValidationFailed
from events.models import Event
from segments.errors import IdempotencyKeyReused, SegmentNotFound
from segments.models import Exclusion, HistoryEvent, Import, Membership, Segment
from segments.services import (
    import_create,
    import_files,
    import_files_purge,
    import_run,
    memberships_update,
    rollout_apply,
    segment_delete,
)
from segments.services.import_queue import ORPHAN_MINUTES
from segments.services.imports import MAX_PROBLEMS, _apply_chunk, _Stage, _start
from segments.services.memberships import AddItem
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment():
    User.objects.bulk_create([User(id=i) for i in range(1, 11)])
    return Segment.objects.create(slug="IMPORTED")


def create(body: bytes | str, *, mode: str = "add", format: str = "csv", **kwargs) -> Import:
    data = body.encode() if isinstance(body, str) else body
    created, _ = import_create(slug="IMPORTED", body=io.BytesIO(data), format=format, mode=mode, actor="pm", **kwargs)
    return created


def run(body: bytes | str, *, mode: str = "add", chunk_lines: int = 3, **kwargs) -> Import:
    return import_run(create(body, mode=mode, **kwargs).pk, chunk_lines=chunk_lines)


def members() -> dict[int, datetime | None]:
    return dict(Membership.objects.filter(segment__slug="IMPORTED").values_list("user_id", "expires_at"))


def imported(operation: str) -> list[int]:
    return sorted(HistoryEvent.objects.filter(source="import", operation=operation).values_list("user_id", flat=True))


def counts(done: Import) -> tuple:
    return done.status, done.total, done.done, done.added, done.removed, done.already_member, done.unknown_users


def stored() -> list[str]:
    """The names of the files in storage's imports folder."""
    folder = import_files.IMPORTS_DIR
    return sorted(default_storage.listdir(folder)[1]) if default_storage.exists(folder) else []


def test_import_create__csv__stored_queued_with_its_job(segment):
    created = create("1\n2\n")

    assert created.status == "queued" and created.total is None and created.segment_slug == "IMPORTED"
    with default_storage.open(created.file_name, "rb") as file:
        assert file.read() == b"1\n2\n"
    with connection.cursor() as cursor:
        cursor.execute("SELECT args::text FROM procrastinate_jobs WHERE task_name = 'run_import'")
        assert cursor.fetchall() == [(f'{{"import_id": {created.pk}}}',)]


def test_import_run__add_with_header_expiry_blank_unknown_and_repeated__counts_and_history(segment):
    memberships_update(user_id=2, add=[AddItem(slug="IMPORTED")], remove=[], actor="earlier", source="api")

    done = run("user_id,expires_at\r\n1\r\n2\n\n3,2030-01-01T00:00:00Z\n99\n1\n", chunk_lines=2)

    assert counts(done) == ("succeeded", 5, 5, 2, 0, 1, 1)
    assert done.error == "" and done.invalid_lines == [] and done.finished_at is not None
    assert members() == {1: None, 2: None, 3: datetime(2030, 1, 1, tzinfo=UTC)}
    assert imported("added") == [1, 3]
    assert sorted(Event.objects.filter(source="import").values_list("user_id", "type")) == [
        (1, "membership.added"),
        (3, "membership.added"),
    ]


def test_import_run__unknown_users__skipped_counted_and_the_first_twenty_listed_in_file_order(segment):
    unknown = list(range(100, 130))

    done = run("\n".join(map(str, [1, *unknown, 2, 100])) + "\n", chunk_lines=7)

    assert (done.status, done.added, done.unknown_users, done.registered) == ("succeeded", 2, 30, 0)
    assert done.unknown_user_ids == unknown[:MAX_PROBLEMS]
    assert not User.objects.filter(pk__gte=100).exists()


def test_import_run__register__unknown_users_registered_added_and_join_rollouts(segment):
    Segment.objects.create(slug="EVERYONE")
    rollout_apply(slug="EVERYONE", percent=100, actor="pm")

    done = run("1\n200\n201\n200\n", chunk_lines=2, register=True)

    assert (done.status, done.added, done.unknown_users, done.registered, done.unknown_user_ids) == (
        "succeeded",
        3,
        0,
        2,
        [],
    )
    assert set(members()) == {1, 200, 201}
    assert set(
        Membership.objects.filter(segment__slug="EVERYONE", user_id__gte=200).values_list("user_id", flat=True)
    ) == {
        200,
        201,
    }
    assert imported("added") == [1, 200, 201]


def test_import_run__register_resumed_after_a_chunk__each_user_registered_and_counted_once(segment):
    created = create("300\n301\n302\n", register=True)
    _start(created.pk)
    stage = _Stage(created.pk)
    stage.fill(Import.objects.get(pk=created.pk))
    assert _apply_chunk(created.pk, stage, 2)

    done = import_run(created.pk, chunk_lines=2)

    assert (done.status, done.registered, done.added, done.total) == ("succeeded", 3, 3, 3)


def test_import_run__finished__file_and_staging_table_gone(segment):
    created = create("1\n")
    done = import_run(created.pk)

    assert done.file_name == "" and not default_storage.exists(created.file_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"segments_import_stage_{created.pk}"])
        assert cursor.fetchone()[0] is None


def test_import_run__invalid_lines__failed_nothing_changed_first_problems_by_line(segment):
    body = "1\nabc\n2,yesterday\n3,2030-01-01T00:00:00\n4,2000-01-01T00:00:00Z\n5,6,7\n0\n9223372036854775808\n42\n"

    done = run(body)

    assert done.status == "failed" and done.error == "7 invalid lines; nothing was changed."
    assert [problem["line"] for problem in done.invalid_lines] == [2, 3, 4, 5, 6, 7, 8]
    assert "in the past" in done.invalid_lines[3]["error"]
    assert (done.added, done.done, done.total) == (0, 0, None)
    assert members() == {} and not HistoryEvent.objects.exists()


def test_import_run__expiry_at_or_past_the_bound__failed_with_those_lines_nothing_changed(segment):
    """The latest expiry is before 9999-01-01T00:00:00Z, whatever the offset; year 10000 in UTC is never stored."""
    body = "1,9998-12-31T23:59:59Z\n2,9999-01-01T00:00:00Z\n3,9999-12-31T23:59:59-05:00\n4,9999-01-01T10:00:00+14:00\n"

    done = run(body)

    assert done.status == "failed" and done.error == "2 invalid lines; nothing was changed."
    assert done.invalid_lines == [
        {"line": 2, "error": "expires_at '9999-01-01T00:00:00Z' must be before 9999-01-01T00:00:00Z"},
        {"line": 3, "error": "expires_at '9999-12-31T23:59:59-05:00' must be before 9999-01-01T00:00:00Z"},
    ]
    assert members() == {} and not HistoryEvent.objects.exists()


def test_import_run__many_invalid_lines__first_twenty_listed_all_counted(segment):
    done = run("x\n" * 50)

    assert [problem["line"] for problem in done.invalid_lines] == list(range(1, MAX_PROBLEMS + 1))
    assert done.error.startswith("50 invalid lines")


def test_import_run__bom_crlf_and_bad_bytes__bom_skipped_bad_line_reported(segment):
    done = run(b"\xef\xbb\xbfuser_id\r\n1\r\n\xff\xfe\r\n")

    assert done.invalid_lines == [{"line": 3, "error": "not UTF-8 text"}]


def test_import_run__remove__removes_listed_members_only(segment):
    memberships_update(user_id=1, add=[AddItem(slug="IMPORTED")], remove=[], actor="earlier", source="api")
    memberships_update(user_id=2, add=[AddItem(slug="IMPORTED")], remove=[], actor="earlier", source="api")

    done = run("1\n3\n99\n", mode="remove")

    assert counts(done) == ("succeeded", 3, 3, 0, 1, 0, 1)
    assert members() == {2: None}
    assert imported("removed") == [1]


def test_import_run__replace__manual_members_exactly_the_list_rollout_members_stay(segment):
    for user_id in (1, 2, 3):
        memberships_update(user_id=user_id, add=[AddItem(slug="IMPORTED")], remove=[], actor="earlier", source="api")
    rollout_apply(slug="IMPORTED", percent=100, actor="pm")  # users 4..10 join by rollout
    rollout_members = set(range(4, 11))

    done = run("2\n3\n4\n", mode="replace", chunk_lines=1)

    assert counts(done) == ("succeeded", 3, 3, 0, 1, 3, 0)
    assert set(members()) == {2, 3} | rollout_members
    sources = dict(Membership.objects.filter(segment=segment).values_list("user_id", "source"))
    assert sources[4] == "manual" and sources[5] == "rollout"
    assert imported("removed") == [1]


def test_import_run__replace_with_an_empty_list__every_manual_member_leaves(segment):
    for user_id in range(1, 8):
        memberships_update(user_id=user_id, add=[AddItem(slug="IMPORTED")], remove=[], actor="earlier", source="api")

    done = run(b'{"user_ids": []}', mode="replace", format="json", chunk_lines=3)

    assert counts(done) == ("succeeded", 0, 0, 0, 7, 0, 0)
    assert members() == {}


def test_import_run__ttl__added_users_expire_unless_their_line_says_when(segment):
    before = timezone.now()

    run("1\n2,2030-01-01T00:00:00Z\n", ttl_seconds=3600)

    expiries = members()
    assert before + timedelta(hours=1) <= expiries[1] <= timezone.now() + timedelta(hours=1)
    assert expiries[2] == datetime(2030, 1, 1, tzinfo=UTC)


def test_import_run__already_member__takes_the_new_expiry_and_becomes_manual_no_history(segment):
    later = datetime(2031, 1, 1, tzinfo=UTC)
    memberships_update(user_id=1, add=[AddItem(slug="IMPORTED", expires_at=later)], remove=[], actor="a", source="api")
    rollout_apply(slug="IMPORTED", percent=100, actor="pm")
    HistoryEvent.objects.all().delete()

    done = run("1\n2,2032-01-01T00:00:00Z\n")

    assert (done.added, done.already_member) == (0, 2)
    assert members()[1] is None and members()[2] == datetime(2032, 1, 1, tzinfo=UTC)
    assert set(Membership.objects.filter(user_id__in=[1, 2], segment=segment).values_list("source", flat=True)) == {
        "manual"
    }
    assert not HistoryEvent.objects.exists()


def test_import_run__expired_member__added_again(segment, without_journal):
    with without_journal():
        Membership.objects.create(user_id=1, segment=segment, expires_at=timezone.now() - timedelta(seconds=1))

    done = run("1\n")

    assert done.added == 1
    assert [(e.operation, e.source) for e in HistoryEvent.objects.order_by("at", "id")] == [
        ("removed", "ttl"),
        ("added", "import"),
    ]


def test_import_run__stopped_after_a_chunk__resumes_where_it_stopped(segment):
    created = create("1\n2\n3\n4\n5\n")
    started, stage = _start(created.pk), _Stage(created.pk)
    assert stage.fill(started) is None
    assert _apply_chunk(created.pk, stage, 2)  # then the worker dies

    assert Import.objects.get(pk=created.pk).done == 2
    done = import_run(created.pk, chunk_lines=2)

    assert counts(done) == ("succeeded", 5, 5, 5, 0, 0, 0)
    assert imported("added") == [1, 2, 3, 4, 5]


def test_import_run__staging_table_lost__staged_again_from_the_file(segment):
    created = create("1\n2\n3\n")
    started, stage = _start(created.pk), _Stage(created.pk)
    stage.fill(started)
    _apply_chunk(created.pk, stage, 1)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {stage.table}")  # as a crash of the server leaves an unlogged table

    done = import_run(created.pk, chunk_lines=1)

    assert counts(done) == ("succeeded", 3, 3, 3, 0, 0, 0)
    assert imported("added") == [1, 2, 3]


def test_import_run__finished_import__run_again_changes_nothing(segment):
    done = run("1\n")
    Membership.objects.all().delete()

    again = import_run(done.pk)

    assert again.status == "succeeded" and members() == {}


def test_import_run__segment_deleted_before_it_runs__failed(segment):
    created = create("1\n")
    segment_delete(slug="IMPORTED", actor="pm")

    done = import_run(created.pk)

    assert done.status == "failed" and "deleted" in done.error


def test_import_create__unknown_segment__refused_nothing_stored(segment):
    with pytest.raises(SegmentNotFound):
        import_create(slug="NOPE", body=io.BytesIO(b"1\n"), format="csv", mode="add", actor="pm")
    assert not Import.objects.exists()


def test_import_create__json__items_become_lines_and_bad_items_are_reported_by_number(segment):
    done = import_run(create(b'{"user_ids": [1, 2, "3", 1.5, true, null, 1e3, "[{\\"]"]}', format="json").pk)

    assert [(problem["line"], problem["error"]) for problem in done.invalid_lines] == [
        (3, "invalid user id '\"3\"'"),
        (4, "invalid user id '1.5'"),
        (5, "invalid user id 'true'"),
        (6, "invalid user id 'null'"),
        (7, "invalid user id '1E+3'"),
        (8, 'invalid user id \'"[{\\\\"]"\''),
    ]


class _Trickle:
    """A body that hands out at most `size` bytes a read, so that every boundary falls between two reads."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = io.BytesIO(data), size

    def read(self, size: int = -1) -> bytes:
        return self.data.read(min(self.size, size) if size >= 0 else self.size)


@pytest.mark.parametrize(
    "body",
    [
        b'{"user_ids": [[1]]}',
        b'{"user_ids": [1, {"a": 1}]}',
        b'{"a": {"b": [1]}}',
        b"[[[" + b"[" * 70_000 + b"]" * 70_003,  # froze a server process: the parser's work grows with depth squared
        b'{"user_ids": [' + b"[" * 70_000,
        rb'{"user_ids": ["]]", "\\", "\\\"[", "\"", [1]]}',  # brackets, escapes in strings hide no nesting
    ],
)
@pytest.mark.parametrize("read_bytes", [1, 3, 1 << 20])
def test_import_create__json_nested_deeper_than_a_list_in_an_object__400_nothing_stored(segment, body, read_bytes):
    with pytest.raises(ValidationFailed) as refused:
        import_create(slug="IMPORTED", body=_Trickle(body, read_bytes), format="json", mode="add", actor="pm")
    assert not Import.objects.exists() and stored() == []
    if read_bytes > len(body):  # the guard read it all before the parser saw any (which may refuse it first)
        assert "Nested deeper" in refused.value.detail


@pytest.mark.parametrize(
    "body",
    [
        b'{"user_ids": [1, "' + b"a" * (import_files.MAX_STRING_BYTES + 1) + b'"]}',
        b'{"user_ids": [1, "' + b"\\n" * 2_000_000,  # escapes count, and an unending string is refused early
        b'{"' + b"k" * 20 * 1024 * 1024 + b'": 1}',  # a 150 MiB one took the parser a minute and 500 MB
    ],
)
@pytest.mark.parametrize("read_bytes", [7, 1 << 20])
def test_import_create__json_string_over_the_bound__400_nothing_stored(segment, body, read_bytes):
    with pytest.raises(ValidationFailed, match="string"):
        import_create(slug="IMPORTED", body=_Trickle(body, read_bytes), format="json", mode="add", actor="pm")
    assert not Import.objects.exists() and stored() == []


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (rb'{"user_ids": ["\"[[[", 1]}', False),  # an escaped quote does not end the string
        (rb'{"user_ids": ["\\", [1]]}', True),  # an escaped backslash does not escape the closing quote
        (rb'{"user_ids": ["abcdef\n"]}', False),  # 8 bytes as sent
        (rb'{"user_ids": ["abcdefg\n"]}', True),  # 9
        (rb'{"user_ids": ["\u00e9\\"]}', False),  # 8
    ],
)
def test_json_guard__escapes_split_anywhere__read_as_sent(body, refused, monkeypatch):
    monkeypatch.setattr(import_files, "MAX_STRING_BYTES", 8)
    for read_bytes in range(1, len(body) + 1):
        guard = import_files._JsonGuard(_Trickle(body, read_bytes))
        try:
            while guard.read(64):
                pass
        except ValidationFailed:
            assert refused, read_bytes
        else:
            assert not refused, read_bytes


# The scan's bytes, often; any other character that UTF-8 can carry (no lone surrogates).
json_texts = st.text(st.sampled_from('a"\\[]{}\n\u00e9') | st.characters(codec="utf-8"), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | json_texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(json_texts, children, max_size=3),
    max_leaves=12,
)


def _depth_and_longest(value, ascii_only: bool) -> tuple[int, int]:
    """A JSON value's nesting depth, and its longest string as json.dumps writes it (between the quotes)."""
    if isinstance(value, str):
        return 0, len(json.dumps(value, ensure_ascii=ascii_only).encode()) - 2
    if isinstance(value, list | dict):
        items = [*value, *value.values()] if isinstance(value, dict) else value  # a key is a string too
        parts = [_depth_and_longest(item, ascii_only) for item in items]
        return 1 + max((depth for depth, _ in parts), default=0), max((longest for _, longest in parts), default=0)
    return 0, 0


@settings(max_examples=300)
@given(value=json_values, read_bytes=st.integers(1, 40), ascii_only=st.booleans())
def test_json_guard__any_json_read_in_any_pieces__refused_exactly_when_too_deep_or_a_string_too_long(
    value, read_bytes, ascii_only
):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth, longest = _depth_and_longest(value, ascii_only)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(import_files, "MAX_STRING_BYTES", 8)  # strings around the bound, from a few characters
        guard = import_files._JsonGuard(_Trickle(body, read_bytes))
        try:
            while guard.read(64):
                pass
        except ValidationFailed:
            refused = True
        else:
            refused = False

    assert refused == (depth > import_files.MAX_DEPTH or longest > 8), body


def test_import_create__json_string_at_the_bound_with_escapes_across_reads__taken_the_line_fails(segment):
    text = b'\\"' * (import_files.MAX_STRING_BYTES // 2) + b"a" * (import_files.MAX_STRING_BYTES % 2)
    body = b'{"user_ids": [1, "' + text + b'", 2]}'

    created, _ = import_create(slug="IMPORTED", body=_Trickle(body, 5), format="json", mode="add", actor="pm")

    done = import_run(created.pk)
    assert done.status == "failed" and [problem["line"] for problem in done.invalid_lines] == [2]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", MalformedJson),
        (b'{"user_ids": [1,', MalformedJson),
        (b'{"user_ids": [1], "user_ids": [2]}', MalformedJson),
        (b"[1, 2]", ValidationFailed),
        (b'{"user_ids": 5}', ValidationFailed),
        (b'{"user_ids": {"a": 1}}', ValidationFailed),
        (b'{"ids": [1]}', ValidationFailed),
        (b"{}", ValidationFailed),
        (b'{"user_ids": [1]} trailing', MalformedJson),
        (b'{"user_ids": [NaN]}', MalformedJson),
        (b'{"user_ids": ["\xff"]}', MalformedJson),
    ],
)
def test_import_create__json_not_an_object_with_a_list__refused_nothing_stored(segment, body, error):
    with pytest.raises(error):
        create(body, format="json")
    assert not Import.objects.exists()
    assert stored() == []


def test_import_create__too_many_lines__refused(segment, monkeypatch):
    monkeypatch.setattr(import_files, "MAX_LINES", 3)

    with pytest.raises(BodyTooLarge):
        create("1\n2\n3\n4")
    with pytest.raises(BodyTooLarge):
        create(b'{"user_ids": [1, 2, 3, 4]}', format="json")
    assert create("1\n2\n3\n").pk


def test_import_create__same_key_same_request__same_import_new_file_dropped(segment):
    first = create("1\n2\n", idempotency_key="k1")

    again, created = import_create(
        slug="IMPORTED", body=io.BytesIO(b"1\n2\n"), format="csv", mode="add", actor="pm", idempotency_key="k1"
    )

    assert (again.pk, created) == (first.pk, False)
    assert stored() == [first.file_name.rsplit("/", 1)[1]]


@pytest.mark.parametrize(
    "change", [{"body": io.BytesIO(b"1\n3\n")}, {"mode": "remove"}, {"ttl_seconds": 60}, {"actor": "other"}]
)
def test_import_create__same_key_another_request__refused_its_body_deleted_or_separate(segment, change):
    first = create("1\n2\n", idempotency_key="k1")
    request = {"slug": "IMPORTED", "body": io.BytesIO(b"1\n2\n"), "format": "csv", "mode": "add", "actor": "pm"}

    if "actor" in change:  # keys are the client's own: another client's key is another import
        assert import_create(**{**request, **change}, idempotency_key="k1")[1]
        return
    for _ in range(3):
        with pytest.raises(IdempotencyKeyReused):
            import_create(**{**request, **change, "body": io.BytesIO(b"7\n")}, idempotency_key="k1")
    assert Import.objects.count() == 1
    assert stored() == [first.file_name.rsplit("/", 1)[1]]  # each refused body was deleted


def test_import_files_purge__old_files_no_unfinished_import_owns__deleted_owned_and_recent_kept(segment):
    queued, running = create("1\n"), create("2\n")
    Import.objects.filter(pk=running.pk).update(status="running")
    import_run(create("3\n").pk)  # finished: its file went with it
    orphan = default_storage.save(f"{import_files.IMPORTS_DIR}/orphan.txt", ContentFile(b"4\n"))  # a killed request's
    default_storage.save(f"{import_files.IMPORTS_DIR}/recent.txt", ContentFile(b"5\n"))  # a request may be storing it
    old = time.time() - ORPHAN_MINUTES * 60 - 5
    for name in (queued.file_name, running.file_name, orphan):
        os.utime(default_storage.path(name), (old, old))

    assert import_files_purge() == 1

    assert stored() == sorted([queued.file_name.rsplit("/", 1)[1], running.file_name.rsplit("/", 1)[1], "recent.txt"])
    assert import_files_purge() == 0


def test_import_files_purge__no_folder_yet__nothing_to_do(segment):
    assert import_files_purge() == 0


def test_import_lines__long_line_without_end__cut_and_refused(segment):
    done = run(b"1\n" + b"9" * 5_000_000)

    assert done.invalid_lines == [{"line": 2, "error": "longer than 200 characters"}]


@pytest.mark.django_db(transaction=True)
def test_import_run__chunk_cancelled_by_the_database__stays_running_and_resumes():
    User.objects.bulk_create([User(id=i) for i in range(1, 11)])
    segment = Segment.objects.create(slug="IMPORTED")
    created = create("1\n2\n3\n")
    with (
        psycopg.connect(**connection.get_connection_params(), autocommit=False) as holder,
        psycopg.connect(**connection.get_connection_params(), autocommit=True) as watcher,
    ):
        holder.execute("SELECT 1 FROM segments_segment WHERE id = %s FOR UPDATE", [segment.pk])

        def cancel_the_waiting_chunk() -> None:
            for _ in range(200):
                pids = watcher.execute(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%segments_segment%'"
                ).fetchall()
                if pids:
                    watcher.execute("SELECT pg_cancel_backend(%s)", [pids[0][0]])
                    return
                time.sleep(0.05)

        canceller = threading.Thread(target=cancel_the_waiting_chunk)
        canceller.start()
        with pytest.raises(OperationalError):
            import_run(created.pk, chunk_lines=2)
        canceller.join()
        holder.rollback()

    assert (Import.objects.get(pk=created.pk).status, Import.objects.get(pk=created.pk).done) == ("running", 0)
    done = import_run(created.pk, chunk_lines=2)
    assert counts(done) == ("succeeded", 3, 3, 3, 0, 0, 0)


def test_import_run__remove_automatic_members__excluded_and_an_add_ends_it(segment):
    rollout_apply(slug="IMPORTED", percent=100, actor="pm")
    memberships_update(user_id=2, add=[AddItem(slug="IMPORTED")], remove=[], actor="earlier", source="api")

    run("1\n2\n", mode="remove")

    assert list(Exclusion.objects.values_list("user_id", "actor")) == [(1, "pm")]
    rollout_apply(slug="IMPORTED", percent=50, actor="pm")
    rollout_apply(slug="IMPORTED", percent=100, actor="pm")
    assert 1 not in members() and 2 in members()  # 2 was a manual member: not excluded, covered again
    run("1\n", mode="add")
    assert not Exclusion.objects.exists() and 1 in members()
