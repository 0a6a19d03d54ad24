import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from segments.models import HistoryEvent, Segment
from users.models import User


@pytest.fixture
def users(db):
    User.objects.bulk_create([User(id=i) for i in (1000, 1002, 1004)])
    return [1000, 1002, 1004]


@pytest.fixture
def segments(db):
    slugs = ["AVITO_VOICE_MESSAGES", "AVITO_PERFORMANCE_VAS", "AVITO_DISCOUNT_30", "AVITO_DISCOUNT_50"]
    Segment.objects.bulk_create([Segment(slug=slug) for slug in slugs])
    return slugs


def _events(**filters) -> list[tuple]:
    """History as (user_id, slug, operation, source) in order."""
    return list(
        HistoryEvent.objects.filter(**filters)
        .order_by("at", "id")
        .values_list("user_id", "segment_slug", "operation", "source")
    )


@pytest.fixture
def events():
    """A function giving the history as (user_id, slug, operation, source) in time order."""
    return _events


@pytest.fixture
def latest_schema_after():
    """The test migrates segments back and forth: afterwards every app is at its latest migration again, for the
    tests that follow on this database (a table of a later migration would be missing otherwise)."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
