"""Security: hashed tokens, read-only tokens, the admin's login and CSRF, deploy checks, headers, secrets."""

import hashlib
import hmac
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User as StaffUser
from django.core.management import call_command
from django.test import Client
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator

from core.models import ApiToken
from events.models import Message, Webhook
from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, memberships_update, segment_create
from users.models import User
from users.services import user_register

REPO = Path(django_settings.BASE_DIR)
WRITE_METHODS = {"post", "put", "patch", "delete"}
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_COOKIES": "true",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_ALLOWED_HOSTS": "segmenter.example.com",
}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SEGMENTER_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def _write_operations() -> list[tuple[str, str]]:
    """Every write the API offers, from the live schema, except those a view lets read-only tokens make."""
    operations = []
    for path, methods in SchemaGenerator().get_schema(public=True)["paths"].items():
        concrete = path.replace("{slug}", "S1").replace("{user_id}", "1000").replace("{id}", "1")
        view_class = resolve(concrete).func.cls
        for method in sorted(set(methods) & WRITE_METHODS):
            if method.upper() not in getattr(view_class, "read_only_safe_methods", ()):
                operations.append((method.upper(), concrete))
    return operations


def _state() -> tuple:
    return (
        list(Segment.objects.order_by("slug").values_list("slug", "description", "rollout_percent", "updated_at")),
        list(User.objects.order_by("id").values_list("id", flat=True)),
        list(Membership.objects.order_by("id").values_list("user_id", "segment_id", "expires_at")),
        HistoryEvent.objects.count(),
        list(Webhook.objects.order_by("id").values_list("id", "url", "enabled")),
        Message.objects.count(),
    )


@pytest.mark.django_db
def test_create_api_token__stored__only_as_sha256_never_in_plain(capsys):
    call_command("create_api_token", "svc")
    token = capsys.readouterr().out.strip().splitlines()[-1]

    row = ApiToken.objects.values().get(name="svc")
    assert row["key_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row.values())
    assert len(token) >= 40


@pytest.mark.django_db
def test_token_lookup__any_token__compared_with_hmac_compare_digest(anon, token, monkeypatch):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert anon.get("/api/v1/segments/").status_code == 200
    assert compared == [(hashlib.sha256(token.encode()).hexdigest(),) * 2]


@pytest.mark.django_db
def test_token__last_character_changed__401(anon, token):
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}")
    assert anon.get("/api/v1/segments/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), _write_operations())
def test_write_endpoint__read_only_token__403_and_nothing_changes(anon, read_only_token, method, path):
    segment_create(slug="S1", rollout_percent=50, actor="tests")
    user_register(user_id=1000, actor="tests")
    memberships_update(user_id=1000, add=[AddItem(slug="S1")], remove=[], source="api", actor="tests")
    Webhook.objects.create(id=1, url="https://hooks.example.com/in", secret="whsec_dGVzdHM=")
    before = _state()
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")

    response = anon.generic(method, path, b'{"slug": "S2", "percent": 0, "user_ids": [1]}', "application/json")

    assert response.status_code == 403, (method, path, response.content[:200])
    assert response.json()["code"] == "permission_denied"
    assert _state() == before


def test_write_operations__listed__cover_segments_users_and_seed_api():
    paths = {path for _, path in _write_operations()}
    assert {"/api/v1/segments/", "/api/v1/users/1000/segments/", "/api/update_user_segments"} <= paths
    assert len(_write_operations()) >= 12


@pytest.fixture
def staff(db) -> StaffUser:
    return StaffUser.objects.create_user("pm", password="a-long-staff-password-1", is_staff=True)


def test_admin__anonymous__redirected_to_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_login__without_csrf_token__403(staff):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "pm", "password": "a-long-staff-password-1"})
    assert response.status_code == 403
    assert client.get("/admin/").status_code == 302


def test_admin_login__staff_with_csrf_token__admitted(staff):
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")
    csrf = client.cookies["csrftoken"].value
    data = {"username": "pm", "password": "a-long-staff-password-1", "csrfmiddlewaretoken": csrf}
    assert client.post("/admin/login/?next=/admin/", data).status_code == 302
    assert client.get("/admin/").status_code == 200
    assert client.post("/admin/logout/").status_code == 403  # a logged-in post without the token


def test_admin_login__user_who_is_not_staff__refused(db):
    StaffUser.objects.create_user("analyst", password="a-long-staff-password-1")
    client = Client()
    client.post("/admin/login/", {"username": "analyst", "password": "a-long-staff-password-1"})
    assert client.get("/admin/").status_code == 302


def test_check_deploy__production_environment__no_issues():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_settings__no_debug_variable__debug_off():
    result = _manage("shell", "-c", "from django.conf import settings; print(settings.DEBUG)", env=PRODUCTION_ENV)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_settings__no_secret_key_and_no_debug__refuses_to_start():
    result = _manage("check", env={"DJANGO_SECRET_KEY": ""})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/health/", "/api/v1/segments/", "/api/v1/nothing-here/"])
def test_response__any_api_path__security_headers(api, path):
    response = api.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
def test_production_settings__https__hsts_and_http_redirect(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    assert "max-age=31536000" in client.get("/api/health/", secure=True)["Strict-Transport-Security"]
    assert client.get("/api/v1/segments/").status_code == 301
    assert client.get("/api/health/").status_code == 200  # load balancer health checks speak plain HTTP


def _repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).is_file()]


SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"sgm_[A-Za-z0-9_-]{40,}"),
    re.compile(
        r"SECRET_KEY\s*[:=]\s*['\"]?(?!\$)(?![^'\"\s]*(?:test|insecure|example|debug))[A-Za-z0-9_!@#%^&*()+=-]{20,}"
    ),
    re.compile(r"postgres(?:ql)?://[^:/\s]+:(?!\$\{)(?!segmenter@)[^@\s]+@", re.IGNORECASE),
]


def test_repository__every_file__holds_no_secret():
    files = _repository_files()
    found = []
    for path in files:
        text = path.read_text(errors="ignore")
        found += [
            f"{path.relative_to(REPO)}: {match.group(0)[:40]}" for p in SECRET_PATTERNS for match in p.finditer(text)
        ]
    assert len(files) > 30
    assert found == []
    assert ".env" not in {path.name for path in files}


TRAVERSALS = [
    "../../segmenter/settings.py",
    "..%2F..%2Fsegmenter%2Fsettings.py",
    "%2e%2e/%2e%2e/manage.py",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "....//....//manage.py",
    "..\\..\\manage.py",
    "A" * 32 + ".csv/../../../manage.py",
    "A" * 32 + ".csv%00.py",
    "A" * 32 + ".csv",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", TRAVERSALS)
def test_report_download__path_outside_or_unknown__404_problem_without_content(api, anon, name):
    response = api.post("/api/v1/reports/", {"from": "2023-08"}, format="json")
    assert anon.get(response.json()["csv_url"].replace("http://testserver", "")).status_code == 200

    response = anon.get(f"/media/reports/{name}")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert b"SECRET" not in response.content and b"root:" not in response.content
