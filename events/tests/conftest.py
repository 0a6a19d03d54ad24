import pytest

from segments.models import Segment
from users.models import User


@pytest.fixture
def users(db) -> list[User]:
    return User.objects.bulk_create([User(id=user_id) for user_id in (1, 2, 3)])


@pytest.fixture
def segment(db) -> Segment:
    return Segment.objects.create(slug="S1")
