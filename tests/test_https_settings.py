"""HTTPS settings from the environment: HSTS parts each opt-in, X-Forwarded-Proto only from a trusted proxy."""

import os
import subprocess
import sys

import pytest
import requests
from django.conf import settings

HEADER_OF_A_SECURE_REQUEST = (
    "from django.test import Client; "
    "print(Client().get('/nothing/', secure=True).headers.get('Strict-Transport-Security'))"
)


def hsts_header(**env: str) -> str:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SEGMENTER_"))}
    env = {**clean, "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "testserver", **env}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", HEADER_OF_A_SECURE_REQUEST],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "header"),
    [
        ({}, "None"),
        ({"DJANGO_HSTS_SECONDS": "3600"}, "max-age=3600"),
        ({"DJANGO_HSTS_SECONDS": "3600", "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true"}, "max-age=3600; includeSubDomains"),
        ({"DJANGO_HSTS_SECONDS": "3600", "DJANGO_HSTS_PRELOAD": "true"}, "max-age=3600; preload"),
        (
            {"DJANGO_HSTS_SECONDS": "3600", "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true", "DJANGO_HSTS_PRELOAD": "true"},
            "max-age=3600; includeSubDomains; preload",
        ),
    ],
)
def test_hsts__environment__header_has_only_the_parts_asked_for(env, header):
    assert hsts_header(**env) == header


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("trusted", "status"), [("false", 301), ("true", 401)])
def test_forwarded_proto__under_gunicorn__believed_only_from_a_trusted_proxy(database_url, gunicorn, trusted, status):
    """With HTTPS required, a plain-HTTP request that claims `X-Forwarded-Proto: https` is redirected
    unless DJANGO_TRUSTED_PROXY=true (then the claim is taken and the request is served: a 401)."""
    env = {"DJANGO_SECURE_SSL_REDIRECT": "true", "DJANGO_TRUSTED_PROXY": trusted}
    with gunicorn(database_url(), workers=1, **env) as server:
        response = requests.get(
            f"{server.base_url}/api/v1/segments/",
            headers={"X-Forwarded-Proto": "https"},
            allow_redirects=False,
            timeout=10,
        )
    assert response.status_code == status
    if status == 301:
        assert response.headers["Location"].startswith("https://127.0.0.1")
