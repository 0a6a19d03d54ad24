"""The optional per-token write rate (SEGMENTER_WRITE_RATE): off by default, counts only writes."""

import json

import pytest
from django.db import connection
from django.test import RequestFactory

from core.auth import token_create
from core.models import RateCount
from core.rates import rate_parse
from core.throttles import rate_counts_purge, rate_hit
from segmenter import hot_path
from segmenter.wsgi import application
from segments.services import segment_create
from users.services import user_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_and_segment():
    user_register(user_id=42, actor="t")
    segment_create(slug="A_SEG", actor="t")


def patch(api, slug: str):
    return api.patch("/api/v1/users/42/segments/", {"add": [slug]}, format="json")


def test_writes__no_write_rate__never_throttled(api, user_and_segment):
    assert {patch(api, "A_SEG").status_code for _ in range(40)} == {200}


def test_writes__over_the_write_rate__429_with_retry_after_and_reads_still_served(api, user_and_segment, settings):
    settings.SEGMENTER_WRITE_RATE = "2/min"
    assert [patch(api, "A_SEG").status_code for _ in range(2)] == [200, 200]
    response = api.put("/api/v1/users/43/")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert api.get("/api/v1/users/43/").status_code == 404  # the refused write changed nothing
    assert [api.get("/api/v1/users/42/segments/").status_code for _ in range(5)] == [200] * 5


def test_writes__over_the_write_rate__another_token_still_writes(api, user_and_segment, settings):
    settings.SEGMENTER_WRITE_RATE = "1/min"
    assert [patch(api, "A_SEG").status_code for _ in range(2)] == [200, 429]
    other = api.__class__()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(name='other')[1]}")
    assert patch(other, "A_SEG").status_code == 200


@pytest.mark.django_db(transaction=True)  # the served application closes the connection at the request's end
def test_fast_lane__write_rate_set__counts_each_patch_once_and_leaves_the_refusal_to_django(
    token, user_and_segment, settings
):
    settings.SEGMENTER_WRITE_RATE = "2/min"
    body = json.dumps({"add": ["A_SEG"]}).encode()
    headers = {"HTTP_HOST": "localhost", "HTTP_AUTHORIZATION": f"Bearer {token}"}

    def environ() -> dict:
        request = RequestFactory().patch("/api/v1/users/42/segments/", body, content_type="application/json", **headers)
        return dict(request.environ)

    assert [hot_path._patch_answer(environ()) is not None for _ in range(2)] == [True, True]  # the lane answers
    refused = environ()
    assert hot_path._patch_answer(refused) is None
    statuses = []
    b"".join(application(refused, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses == ["429 Too Many Requests"]
    assert RateCount.objects.get().count == 3  # Django read the lane's count of the third PATCH


def test_rate_counts_purge__ended_windows_only():
    rate_hit(key="writes:ended", rate="5/min")
    rate_hit(key="writes:current", rate="5/min")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE segmenter_ratecount SET window_end = now() - interval '1 s' WHERE key = 'writes:ended'")
    assert rate_counts_purge() == 1
    assert list(RateCount.objects.values_list("key", "count")) == [("writes:current", 1)]


def test_rate_hit__over_the_limit__refused_until_the_window_ends():
    assert [rate_hit(key="k", rate="2/10s") is None for _ in range(4)] == [True, True, False, False]
    assert 9 < rate_hit(key="k", rate="2/10s") <= 10
    assert RateCount.objects.get(key="k").count == 3  # refused requests count up to limit + 1, no further


@pytest.mark.parametrize("text", ["30", "30/", "/min", "30/week", "30/0s", "-1/min", "30/min ", "1.5/s"])
def test_rate_parse__not_a_rate__value_error(text):
    with pytest.raises(ValueError, match="30/min"):
        rate_parse(text)


@pytest.mark.parametrize(
    ("text", "rate"), [("30/min", (30, 60)), ("5/10s", (5, 10)), ("1/2hour", (1, 7200)), ("0/d", (0, 86400))]
)
def test_rate_parse__rates__limit_and_window(text, rate):
    assert rate_parse(text) == rate
