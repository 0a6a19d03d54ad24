"""Fixtures for every app's tests."""

import pytest
from rest_framework.test import APIClient

from segmenter.auth import token_cache, token_create


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
