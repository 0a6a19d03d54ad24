import hashlib

import pytest
from django.core.management import call_command

from core.models import ApiToken
from segments.models import Segment

pytestmark = pytest.mark.django_db


def test_no_token__401_not_authenticated(problem, anon):
    response = anon.get("/api/v1/segments/")
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"
    problem(anon.get("/api/get_user_segments?user_id=1"), 401, "not_authenticated")


@pytest.mark.parametrize("header", ["Bearer nope", "Token abc", "Bearer", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 500])
def test_bad_token__401(problem, anon, token, header):
    anon.credentials(HTTP_AUTHORIZATION=header)
    problem(anon.get("/api/v1/segments/"), 401, "not_authenticated")


def test_read_only_token__reads_ok_writes_403(problem, anon, read_only_token):
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    assert anon.get("/api/v1/segments/").status_code == 200
    problem(anon.post("/api/v1/segments/", {"slug": "S"}, format="json"), 403, "permission_denied")
    problem(anon.post("/api/create_segment", {"segment_slug": "S"}, format="json"), 403, "permission_denied")
    problem(anon.put("/api/v1/users/5/"), 403, "permission_denied")
    assert not Segment.objects.exists()


def test_open_endpoints__no_token_needed(anon):
    assert anon.get("/api/health/").json() == {"status": "ok", "database": "ok"}
    assert anon.get("/api/schema/").status_code == 200
    assert anon.get("/api/docs/").status_code == 200


def test_auth_off__no_token_needed(anon, settings):
    settings.SEGMENTER_AUTH = False
    assert anon.post("/api/v1/segments/", {"slug": "S"}, format="json").status_code == 201


def test_token__used__last_used_at_recorded(api):
    api.get("/api/v1/segments/")
    assert ApiToken.objects.get(name="tests").last_used_at is not None


def test_create_api_token__prints_token_last__only_hash_stored(capsys):
    call_command("create_api_token", "billing", "--read-only")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    stored = ApiToken.objects.get(name="billing")
    assert stored.read_only
    assert stored.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.key_hash


def test_create_api_token__works_for_requests(anon, capsys):
    call_command("create_api_token", "svc")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anon.post("/api/v1/segments/", {"slug": "S"}, format="json").status_code == 201
