import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.auth import token_create, token_hash
from core.models import ApiToken

pytestmark = pytest.mark.django_db


def api_get(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/segments/").status_code


def test_token_add__shown_once__only_hash_stored_and_token_works(admin_client):
    response = admin_client.post(reverse("admin:segmenter_apitoken_add"), {"name": "billing", "_save": "1"})

    token = response.context["secret"]
    api_token = ApiToken.objects.get(name="billing")
    assert response.status_code == 200 and token in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert api_token.key_hash == token_hash(token) and token not in api_token.key_hash
    assert api_get(token) == 200
    change_page = admin_client.get(reverse("admin:segmenter_apitoken_change", args=[api_token.pk])).content.decode()
    assert token not in change_page and api_token.key_hash not in change_page


def test_token_add__duplicate_name__form_error(admin_client):
    token_create(name="billing")

    response = admin_client.post(reverse("admin:segmenter_apitoken_add"), {"name": "billing"})

    assert response.status_code == 200 and "name" in response.context["adminform"].form.errors
    assert ApiToken.objects.count() == 1


def test_token_change__read_only__writes_refused(admin_client):
    api_token, token = token_create(name="reporting")

    response = admin_client.post(reverse("admin:segmenter_apitoken_change", args=[api_token.pk]), {"read_only": "on"})

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=api_token.pk).read_only
    assert client.post("/api/v1/segments/", {"slug": "X"}, format="json").status_code == 403


def test_token_delete__revoked__requests_refused(admin_client):
    api_token, token = token_create(name="old")
    assert api_get(token) == 200

    response = admin_client.post(reverse("admin:segmenter_apitoken_delete", args=[api_token.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert api_get(token) == 401


def test_token_list__last_used__shown(admin_client):
    _, token = token_create(name="busy")
    token_create(name="idle")
    api_get(token)

    response = admin_client.get(reverse("admin:segmenter_apitoken_changelist"))

    rows = {t.name: t.last_used_at for t in response.context["cl"].result_list}
    assert rows["busy"] is not None and rows["idle"] is None
    assert "Last used at" in response.content.decode()
