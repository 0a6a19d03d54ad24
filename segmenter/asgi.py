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

from a2wsgi import WSGIMiddleware
from django.conf import settings

from core import telemetry
from core.middleware import api_body_refusal
from segmenter.wsgi import application as wsgi_application

CHUNK = 65_536
_bridge = WSGIMiddleware(wsgi_application, workers=int(os.environ.get("GUNICORN_THREADS", "1")))


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        await _bridge(scope, receive, send)
        return
    body = SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115 - closed below
    try:
        if _django_reads_body(scope) and not await _read(receive, body):
            return  # the client went away before its body arrived
        body.seek(0)
        await _bridge(scope, _replay(body), send)
    finally:
        body.close()


async def _lifespan(receive, send) -> None:
    """At shutdown, once the last requests are answered, the process's last counts go to the metrics
    files: uvicorn then ends the process with the signal it was stopped by, so no exit hook runs."""
    while (await receive())["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    telemetry.tally.flush()
    await send({"type": "lifespan.shutdown.complete"})


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
