"""Imports as the worker runs them: checking, staging, chunks, modes, resuming (services/imports.py)."""

import io
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.files.storage import default_storage
from django.db import OperationalError, connection
from django.utils import timezone

from core.errors import BodyTooLarge, IdempotencyKeyReused, MalformedJson, SegmentNotFound, ValidationFailed
from events.models import Event
from segments.models import HistoryEvent, Import, Membership, Segment
from segments.services import import_create, import_files, import_run, memberships_update, rollout_apply, segment_delete
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


def test_import_run__expired_member__added_again(segment):
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
    done = import_run(create(b'{"user_ids": [1, 2, "3", 1.5, true, null, {"a": 1}, [4], 1e3]}', format="json").pk)

    assert [(problem["line"], problem["error"]) for problem in done.invalid_lines] == [
        (3, "invalid user id '\"3\"'"),
        (4, "invalid user id '1.5'"),
        (5, "invalid user id 'true'"),
        (6, "invalid user id 'null'"),
        (7, "invalid user id '{...}'"),
        (8, "invalid user id '[...]'"),
        (9, "invalid user id '1E+3'"),
    ]


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
    stored = (
        default_storage.listdir(import_files.IMPORTS_DIR)[1] if default_storage.exists(import_files.IMPORTS_DIR) else []
    )
    assert stored == []


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
    assert default_storage.listdir(import_files.IMPORTS_DIR)[1] == [first.file_name.rsplit("/", 1)[1]]


@pytest.mark.parametrize(
    "change", [{"body": io.BytesIO(b"1\n3\n")}, {"mode": "remove"}, {"ttl_seconds": 60}, {"actor": "other"}]
)
def test_import_create__same_key_another_request__refused_or_separate(segment, change):
    create("1\n2\n", idempotency_key="k1")
    request = {"slug": "IMPORTED", "body": io.BytesIO(b"1\n2\n"), "format": "csv", "mode": "add", "actor": "pm"}

    if "actor" in change:  # keys are the client's own: another client's key is another import
        assert import_create(**{**request, **change}, idempotency_key="k1")[1]
        return
    with pytest.raises(IdempotencyKeyReused):
        import_create(**{**request, **change}, idempotency_key="k1")
    assert Import.objects.count() == 1


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
