import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_path__404_problem(problem, api):
    problem(api.get("/api/v2/whatever/"), 404, "not_found")


def test_wrong_method__405_problem(problem, api):
    problem(api.post("/api/v1/users/5/segments/", {}, format="json"), 405, "method_not_allowed")
    problem(api.delete("/api/health/"), 405, "method_not_allowed")


def test_malformed_json__400_malformed_json(problem, api):
    problem(
        api.generic("POST", "/api/v1/segments/", b'{"slug": ', content_type="application/json"), 400, "malformed_json"
    )


def test_form_body__415(problem, api):
    problem(api.post("/api/v1/segments/", {"slug": "S"}), 415, "unsupported_media_type")


def test_body_over_1_mib__413(problem, api):
    body = b'{"slug": "' + b"x" * (1024 * 1024) + b'"}'
    problem(api.generic("POST", "/api/v1/segments/", body, content_type="application/json"), 413, "payload_too_large")


def test_bad_host__400_problem(problem, api, settings):
    settings.ALLOWED_HOSTS = ["example.org"]
    problem(api.get("/api/v1/segments/"), 400, "bad_request")
