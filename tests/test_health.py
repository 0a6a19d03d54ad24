import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


@pytest.mark.parametrize("command", [["migrate"], ["seed_users", "--count", "1"], ["quickstart"]])
def test_manage__database_unreachable__one_line_saying_what_to_do(command):
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:9/segmenter", "DJANGO_SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Cannot reach the database of DATABASE_URL (connection to server at")
    assert "correct DATABASE_URL" in result.stderr
