"""Schemathesis against the committed OpenAPI schema, through the WSGI app: no 5xx, no response off-schema."""

from pathlib import Path

import pytest
import schemathesis
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from segmenter.wsgi import application
from segments.services import AddItem, memberships_update, segment_create
from users.services import users_register

schema = schemathesis.openapi.from_path(Path(settings.BASE_DIR) / "docs" / "openapi.yaml")
schema.app = application
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
MAX_EXAMPLES = 12


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """An NDJSON body is described as a string (a user a line): sent as its text, even one that is not valid
    UTF-8 (the server must refuse it with a 400)."""
    return str(value).encode("utf-8", "surrogatepass")


@pytest.fixture
def keep_test_connection():
    """The WSGI app would close the connection at the end of each request, and with it the test's transaction
    (Django's own test client makes the same exception)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def world(db, keep_test_connection) -> None:
    """A few rows so that generated requests also reach existing users and segments."""
    users_register(user_ids=[1, 2, 1000], actor="fuzz")
    for slug in ("0", "A", "S1"):
        segment_create(slug=slug, rollout_percent=50, actor="fuzz")
    memberships_update(user_id=1, add=[AddItem(slug="S1", ttl_seconds=60)], remove=[], source="api", actor="fuzz")


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
def test_api__generated_requests__no_server_error_and_responses_match_schema(case, world, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
