"""POST /api/v1/segments/{slug}/imports/ and GET /api/v1/imports/{id}/ (API.md, "Big segments")."""

from datetime import UTC, datetime

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from segments.models import Import, Membership, Segment
from segments.services import AddItem, import_files, import_run, memberships_update
from users.models import User

pytestmark = pytest.mark.django_db
URL = "/api/v1/segments/IMPORTED/imports/"


@pytest.fixture
def segment(db):
    User.objects.bulk_create([User(id=i) for i in range(1, 6)])
    return Segment.objects.create(slug="IMPORTED")


def post(client: APIClient, body: bytes = b"1\n2\n", content_type: str = "text/csv", url: str = URL, **extra):
    return client.generic("POST", url, body, content_type=content_type, **extra)


def test_import__csv__202_queued_with_location_and_the_worker_applies_it(api, segment):
    response = post(api, b"user_id\n1\n2,2030-01-01T00:00:00Z\n")

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v1/imports/{body['id']}/"
    assert {key: body[key] for key in ("segment", "mode", "status", "total", "done", "error")} == {
        "segment": "IMPORTED",
        "mode": "add",
        "status": "queued",
        "total": None,
        "done": 0,
        "error": None,
    }
    import_run(body["id"])
    shown = api.get(response["Location"]).json()
    assert (shown["status"], shown["total"], shown["done"], shown["added"]) == ("succeeded", 2, 2, 2)
    assert shown["finished_at"].endswith("Z") and shown["invalid_lines"] == []
    assert set(Membership.objects.values_list("user_id", flat=True)) == {1, 2}


def test_import__json_with_mode_and_ttl__taken_as_given(api, segment):
    response = post(api, b'{"user_ids": [3, 4]}', "application/json", URL + "?mode=replace&ttl_seconds=60")

    assert response.status_code == 202
    created = Import.objects.get(pk=response.json()["id"])
    assert (created.mode, created.ttl_seconds) == ("replace", 60)


def test_import__register_true__unknown_users_registered_and_added(api, segment):
    created = post(api, b"1\n77\n", url=URL + "?register=true").json()
    assert created["register"] is True
    import_run(created["id"])

    shown = api.get(f"/api/v1/imports/{created['id']}/").json()

    assert (shown["added"], shown["registered"], shown["unknown_users"], shown["unknown_user_ids"]) == (2, 1, 0, [])
    assert User.objects.filter(pk=77).exists()


def test_import__register_by_default_false__unknown_users_skipped_and_listed(api, segment):
    created = post(api, b"1\n77\n78\n").json()
    import_run(created["id"])

    shown = api.get(f"/api/v1/imports/{created['id']}/").json()

    assert (shown["register"], shown["added"], shown["registered"], shown["unknown_users"]) == (False, 1, 0, 2)
    assert shown["unknown_user_ids"] == [77, 78] and not User.objects.filter(pk=77).exists()


def test_import__register_with_remove__400_nothing_stored(api, segment, problem):
    problem(post(api, url=URL + "?mode=remove&register=true"), 400, "validation_error")
    assert not Import.objects.exists()


def test_import__the_admins_member_export__imported_back_with_its_expiries(api, admin_client, segment):
    memberships_update(user_id=1, add=[AddItem(slug="IMPORTED")], remove=[], source="api", actor="x")
    memberships_update(
        user_id=2,
        add=[AddItem(slug="IMPORTED", expires_at=datetime(2035, 1, 1, tzinfo=UTC))],
        remove=[],
        source="api",
        actor="x",
    )
    exported = admin_client.get(reverse("admin:segments_segment_export", args=[Segment.objects.get().pk]))
    Segment.objects.create(slug="COPY")

    created = post(api, b"".join(exported.streaming_content), url="/api/v1/segments/COPY/imports/").json()
    shown = import_run(created["id"])

    assert (shown.status, shown.added, shown.error) == ("succeeded", 2, "")
    assert dict(Membership.objects.filter(segment__slug="COPY").values_list("user_id", "expires_at")) == {
        1: None,
        2: datetime(2035, 1, 1, tzinfo=UTC),
    }


@pytest.mark.parametrize("query", [{"header": "true", "detail": "true"}, {}])
def test_import__a_report_csv__imported_back_its_user_ids(api, segment, query):
    for user_id in (3, 1):
        memberships_update(user_id=user_id, add=[AddItem(slug="IMPORTED")], remove=[], source="api", actor="a;b")
    report = api.get("/api/v1/reports/history.csv", {"from": timezone.now().strftime("%Y-%m"), **query})
    Segment.objects.create(slug="COPY")

    created = post(api, b"".join(report.streaming_content), url="/api/v1/segments/COPY/imports/").json()
    shown = import_run(created["id"])

    assert (shown.status, shown.added, shown.error) == ("succeeded", 2, "")
    assert set(Membership.objects.filter(segment__slug="COPY").values_list("user_id", flat=True)) == {1, 3}


def test_import__content_type_with_charset__accepted(api, segment):
    assert post(api, content_type="text/csv; charset=utf-8").status_code == 202


def test_import__invalid_lines__failed_import_lists_them(api, segment):
    created = post(api, b"1\nnope\n").json()
    import_run(created["id"])

    shown = api.get(f"/api/v1/imports/{created['id']}/").json()

    assert shown["status"] == "failed" and shown["error"] == "1 invalid line; nothing was changed."
    assert shown["invalid_lines"] == [{"line": 2, "error": "invalid user id 'nope'"}]


def test_import__expiry_past_the_bound__failed_nothing_stored_user_page_still_opens(api, segment):
    created = post(api, b"1,9999-12-31T23:59:59-05:00\n").json()
    import_run(created["id"])

    shown = api.get(f"/api/v1/imports/{created['id']}/").json()

    assert shown["status"] == "failed"
    assert shown["invalid_lines"] == [
        {"line": 1, "error": "expires_at '9999-12-31T23:59:59-05:00' must be before 9999-01-01T00:00:00Z"}
    ]
    assert api.get("/api/v1/users/1/").json()["memberships"] == []


def test_import__idempotency_key__same_request_200_same_import_other_request_422(api, segment, problem):
    first = post(api, HTTP_IDEMPOTENCY_KEY="batch-7")
    again = post(api, HTTP_IDEMPOTENCY_KEY="batch-7")
    other = post(api, b"1\n3\n", HTTP_IDEMPOTENCY_KEY="batch-7")

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and again["Location"] == first["Location"]
    problem(other, 422, "idempotency_key_reused")
    assert Import.objects.count() == 1


@pytest.mark.parametrize("key", ["k" * 256, "tab\there", "ключ", ""])
def test_import__bad_idempotency_key__400(api, segment, problem, key):
    problem(post(api, HTTP_IDEMPOTENCY_KEY=key), 400, "validation_error")
    assert not Import.objects.exists()


def test_import__read_only_token__403_nothing_stored(segment, read_only_token, problem):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")

    problem(post(client), 403, "permission_denied")
    assert not Import.objects.exists()


def test_import__no_token__401(anon, segment, problem):
    problem(post(anon), 401, "not_authenticated")


def test_import__unknown_segment__404_bad_slug__400(api, segment, problem):
    assert problem(post(api, url="/api/v1/segments/NOPE/imports/"), 404, "segment_not_found")["slugs"] == ["NOPE"]
    problem(post(api, url="/api/v1/segments/-bad/imports/"), 400, "validation_error")
    assert not Import.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "?mode=merge",
        "?ttl_seconds=0",
        "?ttl_seconds=abc",
        "?ttl_seconds=1.5",
        "?colour=red",
        # int() takes all of these; a query string's integer is ASCII digits only
        "?ttl_seconds=60.0",
        "?ttl_seconds=%2B60",
        "?ttl_seconds=%2060",
        "?ttl_seconds=1_000",
        "?ttl_seconds=%D9%A1%D9%A2",  # Arabic-Indic digits
        "?ttl_seconds=%EF%BC%91",  # a fullwidth digit
        "?mode=add&mode=replace",  # repeated: neither is guessed
        "?ttl_seconds=60&ttl_seconds=60",
        "?register=maybe",
        "?register=",
    ],
)
def test_import__bad_query__400(api, segment, problem, query):
    problem(post(api, url=URL + query), 400, "validation_error")
    assert not Import.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_import__other_content_type__415(api, segment, problem, content_type):
    problem(post(api, content_type=content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "code"),
    [(b'{"user_ids": [1,', "malformed_json"), (b'{"user_ids": "1"}', "validation_error"), (b"[]", "validation_error")],
)
def test_import__bad_json__400(api, segment, problem, body, code):
    problem(post(api, body, "application/json"), 400, code)
    assert not Import.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"user_ids": [' + b"9" * 5000 + b"]}",  # the JSON parser crashed the process on it
        b'{"user_ids": [-' + b"9" * 5000 + b"]}",
        b'{"user_ids": [' + b"1," * 32461 + b"9" * 1200 + b"]}",  # 600 digits in each of two 64 KiB reads
        b'{"user_ids": ["' + b"9" * 1001 + b'"]}',
    ],
)
def test_import__json_run_of_over_1000_digits__400_before_parsing(api, segment, problem, body):
    assert "1000 digits" in problem(post(api, body, "application/json"), 400, "validation_error")["detail"]
    assert not Import.objects.exists()


def test_import__json_number_of_1000_digits__taken_the_line_fails(api, segment):
    created = post(api, b'{"user_ids": [' + b"9" * 1000 + b"]}", "application/json").json()

    assert import_run(created["id"]).invalid_lines == [{"line": 1, "error": "longer than 200 characters"}]


def test_import__json_exponent_out_of_decimal_range__400(api, segment, problem):
    problem(post(api, b'{"user_ids": [1e9999999999999999999]}', "application/json"), 400, "validation_error")
    assert not Import.objects.exists()


def test_import__body_over_200_mib__413_unread(api, segment, problem):
    response = post(api, b"1\n", CONTENT_LENGTH=str(200 * 1024 * 1024 + 1))

    assert "200 MiB" in problem(response, 413, "payload_too_large")["detail"]
    assert not Import.objects.exists()


def test_import__over_one_mib__accepted_other_endpoints_still_refuse_it(api, segment, problem):
    body = b"".join(b"%d\n" % (i % 5 + 1) for i in range(700_000))  # 1.4 MB

    assert len(body) > 1024 * 1024 and post(api, body).status_code == 202
    problem(api.generic("POST", "/api/v1/users/", body, content_type="application/json"), 413, "payload_too_large")


def test_import__more_lines_than_allowed__413(api, segment, problem, monkeypatch):
    monkeypatch.setattr(import_files, "MAX_LINES", 2)

    problem(post(api, b"1\n2\n3\n"), 413, "payload_too_large")
    assert not Import.objects.exists()


def test_import__get_and_head_405_on_the_segment_path(api, segment, problem):
    problem(api.get(URL), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["999999", "abc", "1.5", "99999999999999999999999"])
def test_import_detail__unknown_id__404(api, segment, problem, path):
    problem(api.get(f"/api/v1/imports/{path}/"), 404, "not_found")


def test_import_detail__read_only_token__may_read(segment, api, read_only_token):
    created = post(api).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")

    assert client.get(f"/api/v1/imports/{created['id']}/").json()["id"] == created["id"]


def test_import__storage_cannot_take_the_file__503_nothing_queued(api, segment, problem, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.MEDIA_ROOT = blocker  # storage cannot make folders under a file

    problem(post(api), 503, "service_unavailable")
    assert not Import.objects.exists()


def test_import__task_queue_cannot_take_the_job__503_nothing_stored(api, segment, problem):
    """The job is queued in the import's transaction, through the task queue's own connector (whose errors
    are not Django's): its table locked by another session past the statement timeout is a 503."""
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("LOCK TABLE procrastinate_jobs IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '300ms'")
        problem(post(api), 503, "service_unavailable")
    assert not Import.objects.exists()
    assert not list((settings.MEDIA_ROOT / import_files.IMPORTS_DIR).glob("*"))  # the stored body is deleted


def test_import__refused_for_its_key__each_body_deleted(api, segment, problem):
    statuses = [post(api, b"%d\n" % i, HTTP_IDEMPOTENCY_KEY="batch-7").status_code for i in range(1, 6)]

    assert statuses == [202, 422, 422, 422, 422]
    assert [path.name for path in (settings.MEDIA_ROOT / import_files.IMPORTS_DIR).glob("*")] == [
        Import.objects.get().file_name.rsplit("/", 1)[1]
    ]


def test_import__queue_full__503_with_retry_after_body_deleted_taken_again_once_it_drains(
    api, segment, problem, settings
):
    settings.SEGMENTER_IMPORT_QUEUE_BYTES = 10
    first = post(api, b"1\n2\n")  # 4 bytes waiting
    second = post(api, b"3\n4\n5\n", HTTP_IDEMPOTENCY_KEY="k")  # 10: the cap, taken

    refused = post(api, b"1\n")

    assert (first.status_code, second.status_code) == (202, 202)
    body = problem(refused, 503, "import_queue_full")
    assert int(refused["Retry-After"]) > 0 and body["max_bytes"] == 10
    assert Import.objects.count() == 2
    assert len(list((settings.MEDIA_ROOT / import_files.IMPORTS_DIR).glob("*"))) == 2
    assert post(api, b"3\n4\n5\n", HTTP_IDEMPOTENCY_KEY="k").status_code == 200  # a repeat adds nothing to wait
    import_run(first.json()["id"])
    assert post(api, b"1\n").status_code == 202
    problem(post(api, b'{"user_ids": [1, 2]}', "application/json"), 503, "import_queue_full")  # stored as 4 bytes


def test_import__ttl_over_two_to_the_31_seconds__taken_and_applied(api, segment):
    response = post(api, b"1\n", url=URL + "?ttl_seconds=3000000000")

    assert response.status_code == 202
    assert import_run(response.json()["id"]).added == 1
    assert Import.objects.get().ttl_seconds == 3_000_000_000


def test_import__ttl_over_100_years__400(api, segment, problem):
    problem(post(api, url=URL + "?ttl_seconds=3200000000"), 400, "validation_error")
