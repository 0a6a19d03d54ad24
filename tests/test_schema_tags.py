"""Swagger UI's groups: every operation under one known tag, with a one-line summary; the v1 API first."""

import pytest
import yaml
from django.conf import settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_schema__every_operation__one_known_tag_and_one_line_summary(schema):
    known = [tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]]
    for path, method, operation in operations(schema):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in known, (method, path, operation["tags"])
        assert operation.get("summary") and "\n" not in operation["summary"], (method, path)
    assert [tag["name"] for tag in schema["tags"]] == known


def test_schema__tags__v1_resources_first_older_api_last(schema):
    tags = {(path, method): operation["tags"][0] for path, method, operation in operations(schema)}
    assert tags["/api/v1/segments/", "get"] == "segments"
    assert tags["/api/v1/users/{user_id}/segments/", "patch"] == "users"
    assert tags["/api/v1/users/{user_id}/history/", "get"] == "history and reports"
    assert tags["/api/v1/reports/history.csv", "get"] == "history and reports"
    assert tags["/api/v1/segments/{slug}/imports/", "post"] == tags["/api/v1/imports/{id}/", "get"] == "imports"
    assert {tag for (path, _), tag in tags.items() if not path.startswith(("/api/v1/", "/api/health/"))} == {
        "older API"
    }
    names = [tag["name"] for tag in schema["tags"]]
    assert names[:3] == ["segments", "users", "history and reports"]
    assert names[-1] == "older API"
