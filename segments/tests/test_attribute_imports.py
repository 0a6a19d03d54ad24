"""POST /api/v1/users/attributes/imports/ and its run by the worker (API.md, "Segments defined by rules")."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from segments.management.commands import import_attributes
from segments.management.commands.import_attributes import _summary
from segments.models import HistoryEvent, Import, Membership, Segment
from segments.services import attribute_imports, automatic_verify, import_files, import_run, segment_create
from segments.services.attribute_imports import AttributeStage, attributes_apply_chunk
from segments.services.imports import _start
from users.models import User, UserAttributes

pytestmark = pytest.mark.django_db
URL = "/api/v1/users/attributes/imports/"
NDJSON = "application/x-ndjson"


@pytest.fixture
def users(db):
    User.objects.bulk_create([User(id=i) for i in range(1, 4)])
    UserAttributes.objects.create(user_id=1, attributes={"city": "Moscow", "plan": "free"})


def ndjson(*items) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def post(client, body: bytes, content_type: str = NDJSON, query: str = "", **extra):
    return client.generic("POST", URL + query, body, content_type=content_type, **extra)


def run(client, body: bytes, content_type: str = NDJSON, query: str = "", **kwargs) -> dict:
    created = post(client, body, content_type, query)
    assert created.status_code == 202, created.content
    import_run(created.json()["id"], **kwargs)
    return client.get(created["Location"]).json()


def stored() -> dict[int, dict]:
    return dict(UserAttributes.objects.values_list("user_id", "attributes"))


def counts(shown: dict) -> tuple:
    return tuple(shown[key] for key in ("status", "total", "done", "created", "updated", "unknown_users"))


def test_import__ndjson_merge__202_location_then_patches_applied(api, users):
    response = post(
        api,
        ndjson(
            {"user_id": 1, "attributes": {"plan": None, "age": 30}},
            {"user_id": 2, "attributes": {"tags": ["a", "b"], "premium": True}},
        ),
    )

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v1/imports/{body['id']}/"
    assert {key: body[key] for key in ("kind", "segment", "mode", "status", "register", "added")} == {
        "kind": "attributes",
        "segment": None,
        "mode": "merge",
        "status": "queued",
        "register": True,
        "added": None,
    }
    import_run(body["id"])
    shown = api.get(response["Location"]).json()
    assert counts(shown) == ("succeeded", 2, 2, 0, 2, 0)
    assert stored() == {1: {"city": "Moscow", "age": 30}, 2: {"tags": ["a", "b"], "premium": True}}
    assert UserAttributes.objects.get(user_id=1).document["age"] == {"n": 30}


def test_import__csv_replace__cells_are_strings_empty_cells_left_out(api, users):
    shown = run(api, b"user_id,city,app_version\n1,Kazan,\n2,,6.2\n\n", "text/csv", "?mode=replace")

    assert (shown["mode"], *counts(shown)) == ("replace", "succeeded", 2, 2, 0, 2, 0)
    assert stored() == {1: {"city": "Kazan"}, 2: {"app_version": "6.2"}}


def test_import__register_default__unknown_users_registered_and_join_rollouts(api, users):
    Segment.objects.create(slug="EVERYONE", rollout_percent=100)

    shown = run(api, ndjson({"user_id": 77, "attributes": {"city": "Omsk"}}, {"user_id": 1, "attributes": {}}))

    assert counts(shown) == ("succeeded", 2, 2, 1, 1, 0)
    assert shown["registered"] == 1
    assert stored()[77] == {"city": "Omsk"}
    assert Membership.objects.filter(user_id=77, segment__slug="EVERYONE", source="rollout").exists()


def test_import__register_false__unknown_users_skipped_counted_and_listed(api, users):
    shown = run(api, ndjson({"user_id": 77, "attributes": {"city": "Omsk"}}), query="?register=false")

    assert counts(shown) == ("succeeded", 1, 1, 0, 0, 1)
    assert shown["unknown_user_ids"] == [77]
    assert not User.objects.filter(pk=77).exists() and 77 not in stored()


def test_import__replace_with_the_same_values__updated_at_kept(api, users):
    before = UserAttributes.objects.get(user_id=1).updated_at
    with connection.cursor() as cursor:  # the test's transaction has one clock: set the stored time back
        cursor.execute("UPDATE users_userattributes SET updated_at = updated_at - interval '1 day'")
    before = UserAttributes.objects.get(user_id=1).updated_at

    run(api, ndjson({"user_id": 1, "attributes": {"plan": "free", "city": "Moscow"}}), query="?mode=replace")

    assert UserAttributes.objects.get(user_id=1).updated_at == before


def test_import__merge_that_changes__updated_at_set(api, users):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE users_userattributes SET updated_at = updated_at - interval '1 day'")
    before = UserAttributes.objects.get(user_id=1).updated_at

    run(api, ndjson({"user_id": 1, "attributes": {"plan": "pro"}}))

    assert UserAttributes.objects.get(user_id=1).updated_at > before


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"user_id": 2, "attributes": {"City": "x"}}', "attributes.City: A key is 1 to 64 characters"),
        ('{"user_id": 2, "attributes": {"tags": [1]}}', "attributes.tags[0]: A list holds strings only."),
        ('{"user_id": 0, "attributes": {}}', "invalid user id 0"),
        ('{"user_id": true, "attributes": {}}', "invalid user id true"),
        ('{"user_id": 2}', 'expected an object {"user_id": …, "attributes": {…}}'),
        ('{"user_id": 2, "attributes": {}, "x": 1}', 'expected an object {"user_id": …, "attributes": {…}}'),
        ('{"user_id": 2, "attributes": []}', "attributes: Expected an object of attributes."),
        ('{"user_id": 2, "attributes": {"n": NaN}}', "attributes.n: A finite number."),
        ('{"user_id": 2, "attributes"', "not JSON: "),
    ],
)
def test_import__an_invalid_line__failed_nothing_changed_the_line_named(api, users, line, error):
    body = ndjson({"user_id": 3, "attributes": {"city": "Perm"}}) + line.encode() + b"\n"

    shown = run(api, body, query="?mode=replace", chunk_lines=1)

    assert (shown["status"], shown["done"], shown["error"]) == ("failed", 0, "1 invalid line; nothing was changed.")
    assert [problem["line"] for problem in shown["invalid_lines"]] == [2]
    assert shown["invalid_lines"][0]["error"].startswith(error)
    assert stored() == {1: {"city": "Moscow", "plan": "free"}}


def test_import__a_user_listed_twice__the_later_line_invalid(api, users):
    body = ndjson(*({"user_id": user_id, "attributes": {"n": 1}} for user_id in (2, 3, 2, 2)))

    shown = run(api, body)

    assert shown["status"] == "failed" and shown["error"] == "2 invalid lines; nothing was changed."
    assert shown["invalid_lines"] == [
        {"line": 3, "error": "user 2 is listed on line 1 already"},
        {"line": 4, "error": "user 2 is listed on line 1 already"},
    ]
    assert 2 not in stored()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("user_id,City\n", "column 'City': a key is 1 to 64 characters"),
        ("user_id,city,city\n", "a column named twice in the header"),
        ("id,city\n", "expected a JSON object, or a CSV header line"),
    ],
)
def test_import__csv_bad_header__failed_line_one(api, users, line, error):
    shown = run(api, line.encode() + b"2,x\n", "text/csv")

    assert shown["status"] == "failed" and shown["invalid_lines"][0]["line"] == 1
    assert shown["invalid_lines"][0]["error"].startswith(error)


def test_import__csv_row_of_another_width__invalid(api, users):
    shown = run(api, b'user_id,city\n2,"Saint Petersburg, north"\n3,a,b\n', "text/csv")

    assert shown["invalid_lines"] == [{"line": 3, "error": "expected 2 cells, as the header names; found 3"}]


def test_import__merge_result_past_the_key_limit__failed_nothing_changed(api, users):
    UserAttributes.objects.filter(user_id=1).update(attributes={f"k{i}": i for i in range(99)})
    body = ndjson(
        {"user_id": 2, "attributes": {"a": 1}},
        {"user_id": 1, "attributes": {"x": 1, "y": 2}},  # 101 keys
        {"user_id": 3, "attributes": {"k1": None, "x": 1}},
    )

    shown = run(api, body)

    assert shown["status"] == "failed"
    assert shown["invalid_lines"] == [{"line": 2, "error": "attributes: At most 100 keys; the result would have 101."}]
    assert 2 not in stored()


@pytest.mark.parametrize(("extra", "status"), [(0, "succeeded"), (1, "failed")])
def test_import__merge_result_at_and_past_the_byte_limit__held_to_compact_json_size(api, users, extra, status):
    stored_before = {f"k{i}": "é" * 550 for i in range(14)} | {"tags": ["p", "q r", "s"], "n": 1.5, "ok": True}
    patch = {"ok": None, "last": "z" * 500, "pad": ""}
    size = len(json.dumps(stored_before | patch, separators=(",", ":"), ensure_ascii=False).encode())
    size -= len('"ok":null,')
    patch["pad"] = "x" * (16 * 1024 - size + extra)  # the result's compact JSON: 16 KiB, or a byte more
    UserAttributes.objects.create(user_id=2, attributes=stored_before)

    shown = run(api, ndjson({"user_id": 2, "attributes": patch}))

    assert shown["status"] == status
    if extra:
        assert shown["invalid_lines"][0]["error"].startswith("attributes: At most 16,384 bytes")
        assert stored()[2] == stored_before
    else:
        assert len(json.dumps(stored()[2], separators=(",", ":"), ensure_ascii=False).encode()) == 16 * 1024


def test_import__merge_result_past_the_limit_by_a_write_since_the_check__failed_at_that_chunk(api, users):
    created = post(api, ndjson({"user_id": 2, "attributes": {"a": 1}}, {"user_id": 1, "attributes": {"x": 1}}))
    started, stage = _start(created.json()["id"]), AttributeStage(created.json()["id"])
    assert stage.fill(started) is None
    UserAttributes.objects.filter(user_id=1).update(attributes={f"k{i}": i for i in range(100)})

    done = import_run(started.pk, chunk_lines=1)

    assert (done.status, done.done) == ("failed", 1)
    assert done.error.startswith("Line 2: attributes: At most 100 keys; the result would have 101.")
    assert stored()[2] == {"a": 1} and len(stored()[1]) == 100


def test_import__stopped_after_a_chunk__resumes_where_it_stopped(api, users):
    body = ndjson(*({"user_id": user_id, "attributes": {"n": user_id}} for user_id in (1, 2, 3, 4)))
    created = post(api, body).json()
    started, stage = _start(created["id"]), AttributeStage(created["id"])
    assert stage.fill(started) is None
    assert attributes_apply_chunk(created["id"], stage, 2)  # then the worker dies
    assert Import.objects.get(pk=created["id"]).done == 2

    done = import_run(created["id"], chunk_lines=2)

    assert (done.status, done.done, done.count("created"), done.count("updated")) == ("succeeded", 4, 1, 3)
    assert stored() == {1: {"city": "Moscow", "plan": "free", "n": 1}, 2: {"n": 2}, 3: {"n": 3}, 4: {"n": 4}}


def test_import__finished__staging_table_and_file_gone(api, users):
    shown = run(api, ndjson({"user_id": 2, "attributes": {}}))

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"segments_import_stage_{shown['id']}"])
        assert cursor.fetchone()[0] is None
    assert Import.objects.get(pk=shown["id"]).file_name == ""


def test_import__same_idempotency_key_same_body__same_import_200(api, users):
    body = ndjson({"user_id": 2, "attributes": {"a": 1}})
    first = post(api, body, HTTP_IDEMPOTENCY_KEY="k1")
    again = post(api, body, HTTP_IDEMPOTENCY_KEY="k1")
    other = post(api, body, query="?mode=replace", HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and Import.objects.count() == 1
    assert other.status_code == 422


def test_import__bad_requests__refused_nothing_queued(api, users, monkeypatch):
    assert post(api, b"{}", "application/json").status_code == 415
    assert post(api, b"", query="?mode=add").status_code == 400
    assert post(api, b"", query="?register=maybe").status_code == 400
    monkeypatch.setattr(import_files, "MAX_LINES", 2)
    assert post(api, b"1\n2\n3\n").status_code == 413
    assert post(api, b"user_id,a\n1,x\n2,y\n", "text/csv").status_code == 202  # the header is not counted

    assert Import.objects.count() == 1


def test_import__read_only_token__403(read_only_token, users):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")

    assert post(client, ndjson({"user_id": 2, "attributes": {}})).status_code == 403


def test_import__a_line_over_the_line_bound__invalid(api, users, monkeypatch):
    monkeypatch.setattr(attribute_imports, "MAX_LINE_BYTES", 40)

    shown = run(api, ndjson({"user_id": 2, "attributes": {"city": "x" * 40}}))

    assert shown["invalid_lines"] == [{"line": 1, "error": "longer than 40 bytes"}]


def test_import_attributes_command__csv_replace_no_register__queued_as_the_api_does(tmp_path, users):
    path = tmp_path / "attributes.csv"
    path.write_bytes(b"user_id,city\n2,Kazan\n77,Omsk\n")

    call_command("import_attributes", str(path), "--mode", "replace", "--no-register", "--no-wait")
    queued = Import.objects.get()
    done = import_run(queued.pk)

    assert (queued.kind, queued.shown_mode, queued.register, queued.actor) == (
        "attributes",
        "replace",
        False,
        "manage.py import_attributes",
    )
    assert stored()[2] == {"city": "Kazan"} and done.unknown_user_ids == [77]
    assert _summary(done) == (
        f"import {done.pk} succeeded: 2 of 2 lines applied; 0 users registered, 1 updated,"
        " 1 unknown users skipped (first: 77); rule segments: 0 entered, 0 left"
    )


def test_import_attributes_command__invalid_line__waits_then_command_error_naming_it(tmp_path, users, monkeypatch):
    path = tmp_path / "attributes.ndjson"
    path.write_bytes(b'{"user_id": 2, "attributes": {"a": 1}}\n{"user_id": 2}\n')
    waiting = import_attributes.Command._wait

    def worker_then_wait(command, import_id):  # the worker's run, in this process
        import_run(import_id)
        return waiting(command, import_id)

    monkeypatch.setattr(import_attributes.Command, "_wait", worker_then_wait)

    with pytest.raises(CommandError, match=r"1 invalid line; nothing was changed.\nline 2: expected an object"):
        call_command("import_attributes", str(path))
    assert 2 not in stored()


def test_import__rule_segments__users_enter_and_leave_with_history_as_a_write_does(api, users):
    segment_create(slug="MSK", rule={"attribute": "city", "op": "eq", "value": "Moscow"}, actor="pm")
    segment_create(slug="NO_CITY", rule={"attribute": "city", "op": "not_exists"}, actor="pm")
    segment_create(slug="HALF", rollout_percent=100, actor="pm")
    assert _members() == {("MSK", 1), ("NO_CITY", 2), ("NO_CITY", 3), ("HALF", 1), ("HALF", 2), ("HALF", 3)}
    body = ndjson(
        {"user_id": 1, "attributes": {"city": None}},  # leaves MSK, enters NO_CITY
        {"user_id": 2, "attributes": {"city": "Moscow"}},  # enters MSK, leaves NO_CITY
        {"user_id": 3, "attributes": {"age": 3}},  # changed, stays
        {"user_id": 77, "attributes": {"city": "Moscow"}},  # registered: enters MSK and HALF
    )

    shown = run(api, body, chunk_lines=2)

    assert (shown["status"], shown["created"], shown["updated"], shown["entered"], shown["left"]) == (
        "succeeded",
        1,
        3,
        4,
        2,
    )
    assert _members() == {
        *{("NO_CITY", 1), ("MSK", 2), ("NO_CITY", 3), ("MSK", 77)},
        *{("HALF", 1), ("HALF", 2), ("HALF", 3), ("HALF", 77)},
    }
    history = set(
        HistoryEvent.objects.filter(actor="tests").values_list("segment_slug", "user_id", "operation", "source")
    )
    assert history == {
        ("MSK", 1, "removed", "rule"),
        ("NO_CITY", 1, "added", "rule"),
        ("MSK", 2, "added", "rule"),
        ("NO_CITY", 2, "removed", "rule"),
        ("MSK", 77, "added", "rule"),
        ("HALF", 77, "added", "rollout"),
    }
    assert automatic_verify() == []


def _members() -> set[tuple[str, int]]:
    return set(Membership.objects.values_list("segment__slug", "user_id"))


def test_import__body_over_1_mib__taken(api, users):
    line = json.dumps({"user_id": 2, "attributes": {"note": "x" * 900}}).encode() + b"\n"
    body = line + b"\n" * (1024 * 1024)  # blank lines are skipped

    response = post(api, body)

    assert response.status_code == 202, response.content
    import_run(response.json()["id"])
    assert stored()[2] == {"note": "x" * 900}
