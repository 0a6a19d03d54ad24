"""Every request example in the OpenAPI schema (what Swagger UI's "Try it out" fills in) is a request the API
accepts: each body example, and each operation with its query parameters' examples, is sent to a live server,
on the data below, and must get a 2xx."""

import pytest
import requests
from django.db import connection

from core.auth import token_create
from events.services.webhooks import webhook_create
from segments.services import AddItem, memberships_update, segment_create
from users.services import users_register

# The data the examples are written for: the demo users (`manage.py quickstart` registers 1000-1999), a few
# segments, and a webhook. Examples that create a segment create AVITO_DISCOUNT_50, which is not here.
USERS = [1000, 1001]
SEGMENTS = ["AVITO_VOICE_MESSAGES", "AVITO_DISCOUNT_30", "AVITO_PERFORMANCE_VAS"]
# Path parameters, and required query parameters without an example, filled with the objects above (the
# webhook's id is read when it is made).
PATH_VALUES = {"slug": "AVITO_VOICE_MESSAGES", "user_id": "1000"}
# Writes without examples, and why (none today).
WITHOUT_EXAMPLES: set[tuple[str, str]] = set()
WRITES = ("post", "put", "patch", "delete")
TABLES = "users_user, segments_segment, segments_historyevent, segments_import, events_event, events_webhook"


@pytest.fixture
def server(database_url, gunicorn, transactional_db, settings):
    with gunicorn(database_url(), workers=1, MEDIA_ROOT=str(settings.MEDIA_ROOT)) as live:
        yield live.base_url


def _world() -> dict[str, str]:
    """The data the examples are written for, afresh (each example runs on its own copy); the path values."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    users_register(user_ids=USERS, actor="examples")
    for slug in SEGMENTS:
        segment_create(slug=slug, actor="examples")
    memberships_update(user_id=1000, add=[AddItem(slug="AVITO_VOICE_MESSAGES")], remove=[], source="api", actor="t")
    webhook = webhook_create(url="https://93.184.215.14/hooks", segments=["AVITO_DISCOUNT_30"])
    return {**PATH_VALUES, "id": str(webhook.pk)}


def _examples(schema: dict) -> list[tuple[str, str, str, str, dict | str]]:
    """(path, method, media type, example name, body) of every request body example in the schema."""
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    found.append((path, method, media_type, name, example["value"]))
    return found


def _query_examples(schema: dict) -> list[tuple[str, str, dict, list[str]]]:
    """(path, method, {parameter: example}, required parameters without one) of every operation with query
    parameter examples."""
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            query = [parameter for parameter in operation.get("parameters", []) if parameter["in"] == "query"]
            examples = {
                parameter["name"]: parameter.get("example", parameter["schema"].get("example"))
                for parameter in query
                if "example" in parameter or "example" in parameter["schema"]
            }
            required = [p["name"] for p in query if p.get("required") and p["name"] not in examples]
            if examples:
                found.append((path, method, examples, required))
    return found


@pytest.fixture
def session(server) -> requests.Session:
    token = token_create(name="examples")[1]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture
def schema(server, session) -> dict:
    """The schema the server serves, which Swagger UI reads."""
    return session.get(f"{server}/api/schema/?format=json", timeout=10).json()


def test_schema_examples__each_body_sent_to_a_live_server__2xx(server, session, schema):
    examples = _examples(schema)

    with_examples = {(path, method) for path, method, _, _, _ in examples}
    writes_with_bodies = {
        (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in WRITES and "requestBody" in operation
    }
    assert writes_with_bodies - WITHOUT_EXAMPLES - with_examples == set(), "every write with a body has an example"
    assert len(examples) >= len(writes_with_bodies - WITHOUT_EXAMPLES)

    refused = []
    for path, method, media_type, name, body in examples:
        url = server + path.format_map(_world())
        if isinstance(body, str):  # a file's text, as Swagger UI sends it: with the example's media type
            headers = {"Content-Type": media_type}
            response = session.request(method, url, data=body.encode(), headers=headers, timeout=10)
        else:
            response = session.request(method, url, json=body, timeout=10)
        if not 200 <= response.status_code < 300:
            refused.append((method.upper(), path, name, response.status_code, response.text[:300]))
    assert refused == []


def test_schema_examples__query_parameters_sent_to_a_live_server__2xx(server, session, schema):
    operations = _query_examples(schema)
    assert ("/api/v1/reports/history.csv", "get") in {(path, method) for path, method, _, _ in operations}
    refused = []
    for path, method, examples, required in operations:
        values = _world()
        query = {**examples, **{name: values[name] for name in required}}
        response = session.request(method, server + path.format_map(values), params=query, timeout=10)
        if not 200 <= response.status_code < 300:
            refused.append((method.upper(), path, query, response.status_code, response.text[:300]))
    assert refused == []
