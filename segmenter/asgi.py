"""The ASGI entry point that gunicorn.conf.py serves under uvicorn's worker.

Slow clients cost no thread: uvicorn reads request lines and headers in its event loop, and this
entry reads each request's body there too, into a spooled temporary file (in memory up to 1 MiB,
on disk beyond), before it hands the complete request to the WSGI application (the fast lane and
Django, segmenter/wsgi.py) in a pool of GUNICORN_THREADS threads per worker process; each thread
keeps its own database connection. A body that Django would not read is not read here either:
none without a Content-Length, none that the API refuses unread (over 1 MiB: 413; chunked: 411).
Responses go back as the application yields them (a2wsgi's bounded queue), so streamed CSV
reports stay streamed; uvicorn drops the body of a HEAD answer.
"""

import os
from tempfile import SpooledTemporaryFile

from segmenter.wsgi import application as wsgi_application  # first: it configures Django

# isort: split
import asyncpg
from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import build_environ
from django.conf import settings

from segmenter import hot_path
from segmenter.middleware import api_body_refusal
from segments.selectors import user_segment_slugs_of, user_segment_slugs_sql

CHUNK = 65_536
_bridge = WSGIMiddleware(wsgi_application, workers=int(os.environ.get("GUNICORN_THREADS", "1")))


ASYNC_LANE = os.environ.get("SEGMENTER_ASYNC_LANE") == "on"
_pools = []


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        await _bridge(scope, receive, send)
        return
    if ASYNC_LANE and scope["method"] == "GET":
        answer = await _async_get(scope)
        if answer is not None:
            headers, body = answer
            raw = [(k.lower().encode(), v.encode()) for k, v in headers] + [(b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            await send({"type": "http.response.body", "body": body})
            return
    body = SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115 - closed below
    try:
        if _django_reads_body(scope) and not await _read(receive, body):
            return  # the client went away before its body arrived
        body.seek(0)
        await _bridge(scope, _replay(body), send)
    finally:
        body.close()


def _django_reads_body(scope) -> bool:
    headers = {name: value.decode("latin-1") for name, value in scope["headers"]}
    length = headers.get(b"content-length")
    return bool(length) and api_body_refusal(scope["path"], length, headers.get(b"transfer-encoding")) is None


async def _read(receive, body) -> bool:
    """Copy the request body into `body`; False when the client disconnected first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        body.write(message.get("body", b""))
        if not message.get("more_body", False):
            return True


def _replay(body):
    """An ASGI receive that hands the buffered body to the WSGI bridge in chunks."""

    async def receive() -> dict:
        chunk = body.read(CHUNK)
        return {"type": "http.request", "body": chunk, "more_body": len(chunk) == CHUNK}

    return receive


async def _async_get(scope):
    environ = build_environ(scope, None)
    request = hot_path.get_request(environ)
    if request is None or hot_path.cached_client(environ) is None:
        return None
    try:
        pool = await _pool()
        rows = await pool.fetch(_SQL, request[0])
    except Exception:  # noqa: BLE001 - the threaded lane and Django answer it
        return None
    return hot_path.get_answer(request, user_segment_slugs_of(rows))


_SQL = user_segment_slugs_sql().replace("%s", "$1")


async def _pool():
    if not _pools:
        db = settings.DATABASES["default"]
        _pools.append(
            await asyncpg.create_pool(
                host=db["HOST"] or None,
                port=db["PORT"] or None,
                user=db["USER"] or None,
                password=db["PASSWORD"] or None,
                database=db["NAME"],
                min_size=1,
                max_size=int(os.environ.get("GUNICORN_THREADS", "1")),
            )
        )
    return _pools[0]
