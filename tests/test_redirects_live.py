"""A careless client against the production server (gunicorn.conf.py): a write is never turned into a read
or a no-op, whether it forgets the trailing slash or its body gets lost.

The client is `requests`, which follows redirects as browsers and most HTTP libraries do: after a 301 or
302 it repeats a POST or PATCH as a GET without its body, after a 308 with the same method and body.
"""

import pytest
import requests

from core.auth import token_create
from segments.models import Membership, Segment
from segments.services import segment_create
from users.services import users_register

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(transactional_db) -> str:
    """User 7 and segment S1 exist; returns a writing token."""
    users_register(user_ids=[7], actor="setup")
    segment_create(slug="S1", actor="setup")
    return token_create(name="careless")[1]


def test_post_without_trailing_slash__followed_redirect__creates_the_segment(database_url, gunicorn, token):
    with gunicorn(database_url(), workers=1) as server, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        response = session.post(f"{server.base_url}/api/v1/segments", json={"slug": "NEW"}, timeout=10)
    assert [hop.status_code for hop in response.history] == [308]
    assert response.status_code == 201, response.text
    assert response.json()["slug"] == "NEW"
    assert Segment.objects.filter(slug="NEW").exists()


def test_patch_without_trailing_slash__followed_redirect__adds_the_membership(database_url, gunicorn, token):
    with gunicorn(database_url(), workers=1) as server, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        response = session.patch(f"{server.base_url}/api/v1/users/7/segments", json={"add": ["S1"]}, timeout=10)
    assert [hop.status_code for hop in response.history] == [308]
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["S1"]
    assert Membership.objects.filter(user_id=7, segment__slug="S1").exists()


@pytest.mark.parametrize(
    ("body", "lane"),
    [(b"{}", "the fast lane (a JSON body of 1 to 64 KiB)"), (b"", "Django (no body)")],
)
def test_patch_with_neither_add_nor_remove__400_validation_error(database_url, gunicorn, token, body, lane):
    with gunicorn(database_url(), workers=1) as server:
        response = requests.patch(
            f"{server.base_url}/api/v1/users/7/segments/",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=10,
        )
    assert response.status_code == 400, (lane, response.text)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"] == {"add": ["Give add, remove or both."]}
    assert not Membership.objects.exists()


def test_post_over_plain_http__ssl_redirect__308_keeps_method_and_body(database_url, gunicorn, token):
    # No TLS here to follow it to: the redirect's status is what tells a client to repeat the POST with its body.
    with gunicorn(database_url(), workers=1, DJANGO_SECURE_SSL_REDIRECT="true") as server:
        response = requests.post(
            f"{server.base_url}/api/v1/segments/",
            json={"slug": "NEW"},
            headers={"Authorization": f"Bearer {token}"},
            allow_redirects=False,
            timeout=10,
        )
    assert response.status_code == 308
    assert response.headers["Location"] == f"https://127.0.0.1:{server.base_url.rsplit(':', 1)[1]}/api/v1/segments/"
    assert not Segment.objects.filter(slug="NEW").exists()
