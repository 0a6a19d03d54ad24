"""The Content-Security-Policy header: on the admin, the docs and the API; no inline script anywhere."""

import pytest
from django.test import Client

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def directives(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/api/health/", "/api/v1/segments/", "/api/schema/"])
def test_csp__admin_and_api__the_strict_policy(path):
    assert directives(Client().get(path)) == POLICY


def test_csp__swagger_ui__inline_styles_only_and_its_script_a_file(client):
    response = client.get("/api/docs/")
    assert directives(response) == {**POLICY, "style-src": "'self' 'unsafe-inline'"}
    assert b"<script>" not in response.content  # every script has a src
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]
