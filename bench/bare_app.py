"""The Python floor: a WSGI app with no framework that answers the GET hot path with the same SQL.

`GET /api/v1/users/<id>/segments/` with `Authorization: Bearer <BENCH_TOKEN>`; psycopg2, one
persistent connection per thread, the same JSON body as the service. Served by the same
servers and configs as the service (`gunicorn -c gunicorn.conf.py bench.bare_app:application`).
"""

import hashlib
import hmac
import json
import os
import re
import threading

import psycopg2

from bench.sql import HOT_SQL

PATH = re.compile(r"^/api/v1/users/([0-9]{1,19})/segments/$")
TOKEN_DIGEST = hashlib.sha256(os.environ.get("BENCH_TOKEN", "").encode()).hexdigest()
DSN = os.environ.get("BENCH_DSN") or os.environ["DATABASE_URL"]
_local = threading.local()


def _cursor():
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = _local.connection = psycopg2.connect(DSN)
        connection.autocommit = True
    return connection.cursor()


def _reply(start_response, status: str, body: dict):
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ, start_response):
    header = environ.get("HTTP_AUTHORIZATION", "")
    digest = hashlib.sha256(header.partition(" ")[2].strip().encode()).hexdigest()
    if not hmac.compare_digest(digest, TOKEN_DIGEST):
        return _reply(start_response, "401 Unauthorized", {"status": 401, "code": "not_authenticated"})
    match = PATH.match(environ.get("PATH_INFO", ""))
    if match is None or environ["REQUEST_METHOD"] != "GET":
        return _reply(start_response, "404 Not Found", {"status": 404, "code": "not_found"})
    user_id = int(match.group(1))
    with _cursor() as cursor:
        cursor.execute(HOT_SQL, [user_id, user_id])
        rows = cursor.fetchall()
    if not rows:
        return _reply(start_response, "404 Not Found", {"status": 404, "code": "user_not_found"})
    slugs = sorted(slug for _, slug in rows if slug is not None)
    return _reply(start_response, "200 OK", {"user_id": user_id, "segments": slugs})
