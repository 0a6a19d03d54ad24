import pytest

from reports.services import NAME_RE


def fetch(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_get_user_history__query_string__csv_url_of_the_users_events(api, anon, boundary):
    response = api.get("/api/get_user_history", {"user_id": 1000, "start_date": "2023-08", "end_date": "2023-09"})
    assert response.status_code == 200
    assert list(response.json()) == ["csv_url"]
    url = response.json()["csv_url"]
    assert url.startswith("http://testserver/media/reports/") and NAME_RE.fullmatch(url.rsplit("/", 1)[1])
    assert fetch(anon, url) == (
        b"1000;AVITO_VOICE_MESSAGES;added;2023-08-31T10:25:04Z\n"
        b"1000;AVITO_DISCOUNT_30;added;2023-08-31T23:59:59Z\n"
        b"1000;AVITO_VOICE_MESSAGES;added;2023-09-01T00:00:00Z\n"
        b"1000;AVITO_DISCOUNT_30;removed;2023-09-01T00:00:00Z\n"
    )


def test_get_user_history__json_body_without_end_date__one_month(api, anon, boundary):
    response = api.generic(
        "GET", "/api/get_user_history", '{"user_id": 1002, "start_date": "2023-7"}', content_type="application/json"
    )
    assert fetch(anon, response.json()["csv_url"]) == b"1002;AVITO_VOICE_MESSAGES;added;2023-07-31T23:59:59Z\n"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"user_id": 1000}, "start_date"),
        ({"user_id": 1000, "start_date": "2023-13"}, "start_date"),
        ({"user_id": 1000, "start_date": "2023-08", "end_date": "2023-07"}, "end_date"),
        ({"user_id": 1000, "start_date": "2023-08", "end_date": "August"}, "end_date"),
        ({"user_id": "x", "start_date": "2023-08"}, "user_id"),
        ({"start_date": "2023-08"}, "user_id"),
    ],
)
def test_get_user_history__bad_fields__validation_error_naming_field(api, params, field):
    response = api.get("/api/get_user_history", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_get_user_history__no_token__401(anon):
    assert anon.get("/api/get_user_history", {"user_id": 1, "start_date": "2023-08"}).status_code == 401
