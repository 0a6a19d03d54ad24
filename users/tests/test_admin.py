from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from segments.models import Membership, Segment
from segments.services import AddItem, memberships_update, segment_create
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    User.objects.bulk_create([User(id=i) for i in (5, 50, 500)])
    for slug in ("B_SEGMENT", "A_SEGMENT", "GONE"):
        segment_create(slug=slug, actor="setup")
    memberships_update(
        user_id=50, add=[AddItem(slug="B_SEGMENT"), AddItem(slug="A_SEGMENT")], remove=[], source="api", actor="setup"
    )
    gone = Segment.objects.get(slug="GONE")
    Membership.objects.create(user_id=50, segment=gone, expires_at=timezone.now() - timedelta(seconds=1))
    return User.objects.get(pk=50)


def test_user_list__search_by_id__exact_match_only(admin_client, member):
    url = reverse("admin:users_user_changelist")

    found = admin_client.get(url, {"q": "50"})
    none = admin_client.get(url, {"q": "fifty"})

    assert [user.id for user in found.context["cl"].result_list] == [50]
    assert list(none.context["cl"].result_list) == []


def test_user_page__active_memberships__listed_read_only(admin_client, member, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:users_user_change", args=[50]))

    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("A_SEGMENT") < body.index("B_SEGMENT")
    assert "GONE" not in body
    assert 'name="memberships-0-expires_at' not in body and "_save" not in body


def test_user_admin__add_change_delete__refused(admin_client, member):
    add = admin_client.post(reverse("admin:users_user_add"), {"id": "7"})
    change = admin_client.post(reverse("admin:users_user_change", args=[50]), {"id": "51"})
    delete = admin_client.post(reverse("admin:users_user_delete", args=[50]), {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert sorted(User.objects.values_list("id", flat=True)) == [5, 50, 500]


def test_user_lookup_popup__raw_id_widget__lists_users(admin_client, member):
    response = admin_client.get(reverse("admin:users_user_changelist"), {"_to_field": "id", "_popup": "1", "q": "500"})

    assert response.status_code == 200
    assert [user.id for user in response.context["cl"].result_list] == [500]


def test_admin_pages__header_and_title__name_the_service(admin_client, client):
    for response in (admin_client.get(reverse("admin:index")), client.get(reverse("admin:login"))):
        page = response.content.decode()
        assert response.status_code == 200
        assert "Segmenter admin" in page
        assert "Django administration" not in page
        assert "<title>" in page and "| Segmenter admin</title>" in page
