from datetime import UTC, datetime

import pytest

from segments.models import HistoryEvent, Segment
from users.models import User


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def event(user_id: int, slug: str, operation: str, at: datetime, source: str = "api", actor: str = "crm") -> None:
    """A history row with an explicit time: the data of a scenario, as the services would write it."""
    HistoryEvent.objects.create(
        user_id=user_id, segment_slug=slug, operation=operation, at=at, source=source, actor=actor
    )


@pytest.fixture
def boundary(db) -> None:
    """Events around the August/September 2023 boundary, written out of time order."""
    event(1000, "AVITO_VOICE_MESSAGES", "added", utc(2023, 9, 1, 0, 0, 0))
    event(1000, "AVITO_DISCOUNT_30", "added", utc(2023, 8, 31, 23, 59, 59).replace(microsecond=999999))
    event(1002, "AVITO_DISCOUNT_30", "added", utc(2023, 8, 1, 0, 0, 0))
    event(1000, "AVITO_DISCOUNT_30", "removed", utc(2023, 9, 1, 0, 0, 0), source="ttl", actor="system")
    event(1002, "AVITO_VOICE_MESSAGES", "added", utc(2023, 7, 31, 23, 59, 59), source="rollout", actor="ops")
    event(1000, "AVITO_VOICE_MESSAGES", "added", utc(2023, 8, 31, 10, 25, 4), source="admin", actor="anna")


@pytest.fixture
def member(db):
    """User 1000 and segment AVITO_DISCOUNT_30."""
    return User.objects.create(id=1000), Segment.objects.create(slug="AVITO_DISCOUNT_30")
