import pytest

from segments.models import Segment
from users.models import User


@pytest.fixture
def member(db):
    """User 1000 and segment AVITO_DISCOUNT_30."""
    return User.objects.create(id=1000), Segment.objects.create(slug="AVITO_DISCOUNT_30")
