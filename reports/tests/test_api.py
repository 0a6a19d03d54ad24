import pytest
from django.conf import settings
from rest_framework.test import APIClient

from reports.services import NAME_RE
from segments.models import Membership, Segment
from segments.services import AddItem, memberships_update
from users.models import User

AUGUST_CSV = (
    b"1002;AVITO_DISCOUNT_30;added;2023-08-01T00:00:00Z\n"
    b"1000;AVITO_VOICE_MESSAGES;added;2023-08-31T10:25:04Z\n"
    b"1000;AVITO_DISCOUNT_30;added;2023-08-31T23:59:59Z\n"
)
CSV_URL = "/api/v1/reports/history.csv"
BAD_PERIODS = [
    ({}, "from"),
    ({"from": "2023-13"}, "from"),
    ({"from": "2023-0"}, "from"),
    ({"from": "0000-05"}, "from"),
    ({"from": "last month"}, "from"),
    ({"from": ""}, "from"),
    ({"from": "2023-08-01"}, "from"),
    ({"from": "2023-08", "to": "2023-7"}, "to"),
    ({"from": "2023-08", "to": "2023-13"}, "to"),
    ({"from": "2023-08", "to": "2024"}, "to"),
]


@pytest.fixture
def reader(read_only_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_problem(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if field is not None:
        assert list(problem["errors"]) == [field]
    return problem


def test_history_csv__month__exact_bytes_streamed(api, boundary):
    response = api.get(CSV_URL, {"from": "2023-8"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="history_2023-08.csv"'
    assert response["Cache-Control"] == "private, no-store"
    assert body(response) == AUGUST_CSV


@pytest.mark.parametrize("true", ["true", "1", "yes", "on", "TRUE"])
def test_history_csv__header_and_detail_spellings_of_true__header_and_extra_columns(api, boundary, true):
    response = api.get(CSV_URL, {"from": "2023-07", "to": "2023-07", "header": true, "detail": true})
    assert body(response) == (
        b"user_id;segment;operation;at;source;actor\n1002;AVITO_VOICE_MESSAGES;added;2023-07-31T23:59:59Z;rollout;ops\n"
    )


@pytest.mark.parametrize("false", ["false", "0", "no", "off"])
def test_history_csv__false_spellings__plain_lines(api, boundary, false):
    assert body(api.get(CSV_URL, {"from": "2023-08", "header": false, "detail": false})) == AUGUST_CSV


@pytest.mark.parametrize(("param", "value"), [("header", "maybe"), ("detail", ""), ("header", "2")])
def test_history_csv__junk_boolean__validation_error_naming_it(api, boundary, param, value):
    assert_problem(api.get(CSV_URL, {"from": "2023-08", param: value}), 400, "validation_error", param)


def test_history_csv__parameter_given_twice__validation_error_naming_it(api, boundary):
    assert_problem(api.get(CSV_URL + "?from=2023-08&from=2023-09"), 400, "validation_error", "from")


@pytest.mark.parametrize(("params", "field"), BAD_PERIODS)
def test_history_csv__bad_period__validation_error_naming_field(api, params, field):
    problem = assert_problem(api.get(CSV_URL, params), 400, "validation_error", field)
    assert field in problem["detail"]


@pytest.mark.parametrize(("param", "value"), [("user_id", "0"), ("user_id", "1.5"), ("segment", "bad slug")])
def test_history_csv__bad_filter__validation_error(api, param, value):
    assert_problem(api.get(CSV_URL, {"from": "2023-08", param: value}), 400, "validation_error", param)


def test_history_csv__user_and_segment_filters__matching_lines(api, boundary):
    response = api.get(CSV_URL, {"from": "2023-08", "user_id": "1000", "segment": "AVITO_DISCOUNT_30"})
    assert body(response) == b"1000;AVITO_DISCOUNT_30;added;2023-08-31T23:59:59Z\n"


def test_history_csv__accept_text_csv_and_error__still_problem_json(api):
    assert_problem(api.get(CSV_URL, {"from": "x"}, HTTP_ACCEPT="text/csv"), 400, "validation_error", "from")


def test_history_csv__no_token__401(anon):
    assert_problem(anon.get(CSV_URL, {"from": "2023-08"}), 401, "not_authenticated")


def test_history_csv__due_ttl__removed_line_once(utc, api, member):
    user, segment = member
    Membership.objects.create(user=user, segment=segment, expires_at=utc(2023, 8, 31, 23, 59, 59))
    expected = b"1000;AVITO_DISCOUNT_30;removed;2023-08-31T23:59:59Z;ttl;system\n"
    for _ in range(2):
        assert body(api.get(CSV_URL, {"from": "2023-08", "detail": "true"})) == expected


def test_reports__post__201_absolute_url_that_serves_the_file_without_token(api, anon, boundary):
    response = api.post("/api/v1/reports/", {"from": "2023-08"}, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["rows"] == 3
    prefix = "http://testserver/media/reports/"
    assert data["csv_url"].startswith(prefix) and NAME_RE.fullmatch(data["csv_url"][len(prefix) :])
    download = anon.get(data["csv_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"].startswith("attachment")
    assert body(download) == AUGUST_CSV


def test_reports__header_detail_and_filters__file_matches_history_csv(api, boundary):
    params = {"from": "2023-07", "to": "2023-09", "user_id": 1000, "header": True, "detail": True}
    data = api.post("/api/v1/reports/", params, format="json").json()
    streamed = body(api.get(CSV_URL, params))
    assert streamed.startswith(b"user_id;segment;operation;at;source;actor\n1000;")
    assert body(api.get(data["csv_url"])) == streamed
    assert data["rows"] == 4


def test_reports__many_reports__names_distinct_and_192_bits(api, boundary):
    urls = {api.post("/api/v1/reports/", {"from": "2023-08"}, format="json").json()["csv_url"] for _ in range(20)}
    assert len(urls) == 20
    names = [url.rsplit("/", 1)[1] for url in urls]
    assert all(NAME_RE.fullmatch(name) for name in names)
    # 32 characters of the URL-safe base64 alphabet: 192 bits; together they use most of the alphabet.
    assert len(set("".join(name[:32] for name in names))) > 40


def test_reports__read_only_token__may_request_a_report(reader, boundary):
    assert reader.post("/api/v1/reports/", {"from": "2023-08"}, format="json").status_code == 201
    assert reader.get(CSV_URL, {"from": "2023-08"}).status_code == 200


@pytest.mark.parametrize(("params", "field"), BAD_PERIODS)
def test_reports__bad_period__validation_error_naming_field(api, params, field):
    assert_problem(api.post("/api/v1/reports/", params, format="json"), 400, "validation_error", field)


@pytest.mark.parametrize("value", [2023, None, ["2023-08"], True])
def test_reports__from_not_a_string__validation_error(api, value):
    assert_problem(api.post("/api/v1/reports/", {"from": value}, format="json"), 400, "validation_error", "from")


def test_reports__unknown_field__validation_error(api):
    assert_problem(
        api.post("/api/v1/reports/", {"from": "2023-08", "user": 1}, format="json"), 400, "validation_error", "user"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/media/reports/../../settings.py",
        "/media/reports/..%2F..%2Fsegmenter%2Fsettings.py",
        "/media/reports/%2e%2e/secret.csv",
        "/media/reports/..%5csecret.csv",
        "/media/reports//etc/passwd",
        "/media/reports/notes.csv",
        "/media/reports/",
        "/media/reports/" + "A" * 32 + ".csv",
        "/media/reports/" + "A" * 32 + ".csv%00",
        "/media/reports/" + "A" * 32 + ".csv/",
    ],
)
def test_report_file__anything_but_a_report_name__404_problem(anon, boundary, path):
    (settings.MEDIA_ROOT / "reports").mkdir(parents=True)
    (settings.MEDIA_ROOT / "secret.csv").write_text("secret")
    (settings.MEDIA_ROOT / "reports" / "notes.csv").write_text("notes")
    assert_problem(anon.get(path), 404, "not_found")


def test_report_file__post__405_problem(api, anon, boundary):
    url = api.post("/api/v1/reports/", {"from": "2023-08"}, format="json").json()["csv_url"]
    response = anon.post(url)
    assert_problem(response, 405, "method_not_allowed")
    assert anon.get(url).status_code == 200


def test_user_history__pages__oldest_first_events(api, boundary):
    User.objects.create(id=1000)
    response = api.get("/api/v1/users/1000/history/", {"from": "2023-08", "to": "2023-09", "page_size": 2})
    assert response.status_code == 200
    seen = response.json()["results"]
    assert seen[0] == {
        "user_id": 1000,
        "segment": "AVITO_VOICE_MESSAGES",
        "operation": "added",
        "at": "2023-08-31T10:25:04Z",
        "source": "admin",
        "actor": "anna",
    }
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        seen += response.json()["results"]
    assert [(e["segment"], e["operation"], e["at"]) for e in seen] == [
        ("AVITO_VOICE_MESSAGES", "added", "2023-08-31T10:25:04Z"),
        ("AVITO_DISCOUNT_30", "added", "2023-08-31T23:59:59Z"),
        ("AVITO_VOICE_MESSAGES", "added", "2023-09-01T00:00:00Z"),
        ("AVITO_DISCOUNT_30", "removed", "2023-09-01T00:00:00Z"),
    ]


def test_user_history__unknown_user__404_user_not_found(api):
    problem = assert_problem(api.get("/api/v1/users/77/history/", {"from": "2023-08"}), 404, "user_not_found")
    assert problem["user_id"] == 77


@pytest.mark.parametrize(("params", "field"), BAD_PERIODS)
def test_user_history__bad_period__validation_error_naming_field(api, params, field):
    User.objects.create(id=1000)
    assert_problem(api.get("/api/v1/users/1000/history/", params), 400, "validation_error", field)


def test_user_history__read_only_token__200(reader, member):
    assert reader.get("/api/v1/users/1000/history/", {"from": "2023-08"}).json()["results"] == []


def test_user_history__events_sharing_one_instant__each_once_across_pages(api, member):
    slugs = [f"S{i}" for i in range(7)]
    Segment.objects.bulk_create(Segment(slug=slug) for slug in slugs)
    memberships_update(user_id=1000, add=[AddItem(slug=s) for s in slugs], remove=[], source="api", actor="crm")
    memberships_update(user_id=1000, add=[], remove=slugs[:3], source="api", actor="crm")
    url = "/api/v1/users/1000/history/?" + "&".join(f"{k}={v}" for k, v in {"from": "2000-01", "to": "9999-12"}.items())
    response, seen = api.get(url + "&page_size=2"), []
    while True:
        seen += [(e["segment"], e["operation"]) for e in response.json()["results"]]
        if not response.json()["next"]:
            break
        response = api.get(response.json()["next"])
    assert len(seen) == 10
    assert set(seen[:7]) == {(s, "added") for s in slugs}
    assert set(seen[7:]) == {(s, "removed") for s in slugs[:3]}
