import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run the real app in a fresh process whose database cannot be reached (nothing listens on port 9).
PROBE = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/api/health/")
print(json.dumps({"status": response.status_code, "type": response["Content-Type"], "body": response.json()}))
"""


@pytest.mark.django_db
def test_health__database_up__200_ok(anon):
    response = anon.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health__database_unreachable__503_problem():
    url = "postgres://postgres@127.0.0.1:9/segmenter"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "x",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DJANGO_SETTINGS_MODULE": "segmenter.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["type"] == "application/problem+json"
    assert answer["body"]["code"] == "service_unavailable" and answer["body"]["database"] == "unavailable"
