"""JSON bodies: a key twice is malformed everywhere; v1 numbers are JSON numbers, the seed API stays lenient."""

import json

import pytest
from django.test import RequestFactory

from segmenter.wsgi import application
from segments.models import HistoryEvent, Segment
from segments.services import segment_create
from users.services import user_register


@pytest.fixture
def world(db):
    segment_create(slug="S1", actor="tests")
    user_register(user_id=1000, actor="tests")


def wsgi_patch(token: str, raw: bytes) -> tuple[str, dict]:
    """A PATCH of user 1000's segments through the whole WSGI app, fast lane included."""
    environ = (
        RequestFactory()
        .patch(
            "/api/v1/users/1000/segments/",
            raw,
            content_type="application/json",
            HTTP_HOST="localhost",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        .environ
    )
    seen = {}
    body = b"".join(application(environ, lambda status, headers, exc_info=None: seen.update(status=status)))
    return seen["status"], json.loads(body)


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/segments/", b'{"slug": "S2", "slug": "S3"}'),
        ("/api/v1/segments/S1/rollout/", b'{"percent": 10, "dry_run": true, "percent": 20}'),
        ("/api/create_segment", b'{"segment_slug": "S2", "segment_slug": "S3"}'),
        ("/api/update_user_segments", b'{"user_id": 1000, "assign_segments": ["S1"], "user_id": 1001}'),
    ],
)
def test_body__key_twice__400_malformed_json_and_nothing_changes(api, world, path, raw):
    response = api.post(path, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert "appears twice" in response.json()["detail"]
    assert list(Segment.objects.values_list("slug", flat=True)) == ["S1"]
    assert not HistoryEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_v1_patch__key_twice_on_the_fast_lane__400_malformed_json(token):
    segment_create(slug="S1", actor="tests")
    user_register(user_id=1000, actor="tests")
    status, body = wsgi_patch(token, b'{"add": ["S1"], "add": []}')
    assert (status, body["code"]) == ("400 Bad Request", "malformed_json")
    assert not HistoryEvent.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/segments/", {"slug": "S2", "rollout_percent": "10.5"}),
        ("patch", "/api/v1/segments/S1/", {"rollout_percent": "10"}),
        ("put", "/api/v1/segments/S1/", {"rollout_percent": "0"}),
        ("post", "/api/v1/segments/S1/rollout/", {"percent": "10.5"}),
        ("patch", "/api/v1/users/1000/segments/", {"add": [{"slug": "S1", "ttl_seconds": "60"}]}),
        ("patch", "/api/v1/users/1000/segments/", {"add": [{"slug": "S1", "ttl_seconds": 60.0}]}),
    ],
)
def test_v1_number__given_as_a_string_or_float_integer__400_validation_error(api, world, method, path, body):
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert Segment.objects.get(slug="S1").rollout_percent == 0
    assert not HistoryEvent.objects.exists()


def test_v1_number__json_numbers__taken(api, world):
    assert api.patch("/api/v1/segments/S1/", {"rollout_percent": 10.5}, format="json").json()["rollout_percent"] == 10.5
    response = api.patch("/api/v1/users/1000/segments/", {"add": [{"slug": "S1", "ttl_seconds": 60}]}, format="json")
    assert response.status_code == 200


def test_seed_fraction__a_string__taken_as_documented(api, world):
    response = api.post("/api/create_segment", {"segment_slug": "S2", "fraction": "10.5"}, format="json")
    assert response.status_code in (200, 201)
    assert Segment.objects.get(slug="S2").rollout_percent == 10.5
