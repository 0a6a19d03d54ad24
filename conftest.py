"""Fixtures for every app's tests, and the helpers tests share, each handed out as a fixture."""

from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient

from core.auth import token_cache, token_create
from segments.models import HistoryEvent
from segments.services import memberships_expire


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings):
    """Tests run without collectstatic: serve static names as they are, found by the finders."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Staff users and admin logins hash a password each time: in-process tests use a fast hasher (servers
    the tests start keep the production one)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _journal_context(request):
    """Tests may create segments and memberships through the ORM: the journal writes them with source `api` and
    actor `tests`, set for the test's database session. Services set their own for their transactions (as in
    production, where nothing is set for the session), so what they write is journaled as they say. Tests
    marked `journal_unset` run without it, as do the servers live tests start."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("journal_unset") or not (
        names & {"db", "transactional_db"} or request.node.get_closest_marker("django_db")
    ):
        yield
        return
    request.getfixturevalue("transactional_db" if "transactional_db" in names else "db")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('segments.source', 'api', false), set_config('segments.actor', 'tests', false)"
        )
    yield
    try:
        with connection.cursor() as cursor:
            cursor.execute("RESET segments.source; RESET segments.actor")
    except Exception:
        pass  # the test closed or broke its connection: the settings went with it


@pytest.fixture
def without_journal(db):
    """A context manager: memberships written within it get no history (as data from before the journal had
    its triggers, or a state the journal never makes), in the test's transaction only."""

    @contextmanager
    def off():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")  # no triggers fire (tests run as superuser)
        yield
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")

    return off


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    token_cache.clear()
    yield
    token_cache.clear()


@pytest.fixture
def token(db) -> str:
    return token_create(name="tests")[1]


@pytest.fixture
def read_only_token(db) -> str:
    return token_create(name="reader", read_only=True)[1]


@pytest.fixture
def api(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def _problem(response, status: int, code: str) -> dict:
    """Assert a problem+json answer with this status and code; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"status", "code", "title", "detail"} <= set(body)
    assert (body["status"], body["code"]) == (status, code)
    return body


@pytest.fixture
def problem():
    return _problem


# The history invariant: the memberships table equals the replay of the history events. For every
# (user_id, segment_slug) the events, in time order (ties by id, as reports list them), alternate
# added/removed, starting with `added`, and the last one is `added` exactly when a membership exists.
# A writer that timed its event before waiting for a lock another writer held shows as an operation
# twice in a row. Works on any DB-API cursor: the test database and a private cluster alike.
HISTORY_SQL = "SELECT user_id, segment_slug, operation FROM segments_historyevent ORDER BY at, id"
MEMBERSHIPS_SQL = "SELECT m.user_id, s.slug FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id"


def _replay_problems(events, members: set[tuple[int, str]]) -> list[str]:
    """Every way `events` ((user_id, slug, operation) in time order) fail to replay to `members`."""
    last: dict[tuple[int, str], str] = {}
    problems = []
    for user_id, slug, operation in events:
        previous = last.get((user_id, slug), "removed")
        if operation == previous:
            problems.append(f"doubled {operation} for user {user_id} in {slug}")
        last[(user_id, slug)] = operation
    replayed = {pair for pair, operation in last.items() if operation == "added"}
    problems += [f"member without an added event: user {u} in {s}" for u, s in sorted(members - replayed)]
    problems += [f"added event without a membership: user {u} in {s}" for u, s in sorted(replayed - members)]
    return problems


def _history_problems(cursor) -> list[str]:
    """Every way the data breaks the invariant, as readable lines; empty when it holds."""
    cursor.execute(HISTORY_SQL)
    events = cursor.fetchall()
    cursor.execute(MEMBERSHIPS_SQL)
    return _replay_problems(events, {(user_id, slug) for user_id, slug in cursor.fetchall()})


def _assert_history_replays(cursor) -> int:
    """Fail with the list of problems unless the invariant holds; returns how many events were checked."""
    problems = _history_problems(cursor)
    assert not problems, f"{len(problems)} history problems, e.g.: {problems[:10]}"
    cursor.execute("SELECT count(*) FROM segments_historyevent")
    return cursor.fetchone()[0]


def _assert_database_history_replays() -> int:
    """The invariant on Django's default database, after sweeping due memberships (a due membership
    that is not swept yet has no `removed` event)."""
    memberships_expire()
    with connection.cursor() as cursor:
        return _assert_history_replays(cursor)


@pytest.fixture
def replay_problems():
    return _replay_problems


@pytest.fixture
def history_problems():
    return _history_problems


@pytest.fixture
def assert_history_replays():
    return _assert_history_replays


@pytest.fixture
def assert_database_history_replays():
    return _assert_database_history_replays


def _database_url(name: str | None = None, port: int | None = None) -> str:
    """A DATABASE_URL for the database pytest-django made (or another one on another port)."""
    db = django_settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    if host.startswith("/") and port is None:  # a Unix socket folder (the embedded server)
        return f"postgres://{user}{password}@/{host}/{name or db['NAME']}"
    return f"postgres://{user}{password}@{host}:{port or db.get('PORT') or 5432}/{name or db['NAME']}"


@pytest.fixture
def database_url():
    """A function giving a DATABASE_URL for the test database, for processes the tests start."""
    return _database_url


# History data with explicit times, for reports and their tests.
def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _event(user_id: int, slug: str, operation: str, at: datetime, source: str = "api", actor: str = "crm") -> None:
    """A history row with an explicit time: the data of a scenario, as the services would write it."""
    HistoryEvent.objects.create(
        user_id=user_id, segment_slug=slug, operation=operation, at=at, source=source, actor=actor
    )


@pytest.fixture
def boundary(db) -> None:
    """Events around the August/September 2023 boundary, written out of time order."""
    _event(1000, "AVITO_VOICE_MESSAGES", "added", _utc(2023, 9, 1, 0, 0, 0))
    _event(1000, "AVITO_DISCOUNT_30", "added", _utc(2023, 8, 31, 23, 59, 59).replace(microsecond=999999))
    _event(1002, "AVITO_DISCOUNT_30", "added", _utc(2023, 8, 1, 0, 0, 0))
    _event(1000, "AVITO_DISCOUNT_30", "removed", _utc(2023, 9, 1, 0, 0, 0), source="ttl", actor="system")
    _event(1002, "AVITO_VOICE_MESSAGES", "added", _utc(2023, 7, 31, 23, 59, 59), source="rollout", actor="ops")
    _event(1000, "AVITO_VOICE_MESSAGES", "added", _utc(2023, 8, 31, 10, 25, 4), source="admin", actor="anna")


@pytest.fixture
def utc():
    """A function making a UTC datetime: utc(2023, 8, 31, 23, 59, 59)."""
    return _utc


@pytest.fixture
def event():
    """A function writing a history row with an explicit time."""
    return _event
