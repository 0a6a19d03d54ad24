"""The ASGI entry point that gunicorn.conf.py serves under uvicorn's worker.

Slow clients cost no thread: uvicorn reads request lines and headers in its event loop, and this
entry reads each request's body there too, into a spooled temporary file (in memory up to 1 MiB,
on disk beyond), before it hands the complete request to the WSGI application (the fast lane and
Django, segmenter/wsgi.py) in a pool of GUNICORN_THREADS threads per worker process; each thread
keeps its own database connection. A body that Django would not read is not read here either: none
without a Content-Length, none that core.middleware refuses from the headers (on every path: over 1 MiB but on the
import paths, chunked; over 1 MiB from a caller without a writing token or a staff session, a check
that reads the database, so it runs in the pool). Such a caller, and a body
that has not arrived within SEGMENTER_BODY_TIMEOUT seconds plus one per MiB (408), are answered here,
and the connection closed.
The bridge to the pool is one trip there and back for an ordinary response (the thread runs the
application and joins its body); a streamed response (CSV reports) is read a chunk per trip, so it
stays streamed. uvicorn drops the body of a HEAD answer.
"""

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from a2wsgi.wsgi import build_environ
from django.conf import settings
from django.http import HttpResponse

from core import telemetry
from core.errors import problem_json_response
from core.middleware import body_length, body_refusal, large_body_refusal
from segmenter.wsgi import application as wsgi_application

MIB = 1_048_576
_pool = ThreadPoolExecutor(int(os.environ.get("GUNICORN_THREADS", "1")), thread_name_prefix="wsgi")


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return  # no websockets
    body = SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115 - closed below
    try:
        length = await _body_to_read(scope)
        if isinstance(length, HttpResponse):
            await _answer(scope, send, length)
            return
        if length:
            arrived = await _read(receive, body, settings.SEGMENTER_BODY_TIMEOUT + length / MIB)
            if arrived is None:
                detail = "The request body did not arrive in time."
                await _answer(scope, send, problem_json_response(408, "request_timeout", "Request timeout", detail))
                return
            if not arrived:
                return  # the client went away before its body arrived
        body.seek(0)
        await _serve(scope, body, send)
    finally:
        body.close()


async def _lifespan(receive, send) -> None:
    """At shutdown, once the last requests are answered, the process's last counts go to the metrics
    files: uvicorn then ends the process with the signal it was stopped by, so no exit hook runs."""
    while (await receive())["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    telemetry.tally.flush()
    await send({"type": "lifespan.shutdown.complete"})


async def _body_to_read(scope) -> int | HttpResponse:
    """The length of the body Django will read, 0 when it reads none (then neither does this entry); or
    the refusal of a large body's caller, answered here: Django would ask the database again."""
    headers = {name: value.decode("latin-1") for name, value in scope["headers"]}
    path, content_length = scope["path"], headers.get(b"content-length")
    length = body_length(content_length)
    if not length or body_refusal(path, content_length, headers.get(b"transfer-encoding")):
        return 0
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:  # the caller is looked up in the database: not in the loop
        caller = (path, content_length, headers.get(b"authorization"), headers.get(b"cookie"))
        refusal = await asyncio.get_running_loop().run_in_executor(_pool, large_body_refusal, *caller)
        if refusal:
            return refusal
    return length


async def _read(receive, body, seconds: float) -> bool | None:
    """Copy the request body into `body`: True once whole, False when the client disconnected first,
    None when it did not arrive within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return False
                body.write(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
    except TimeoutError:
        return None


async def _answer(scope, send, response: HttpResponse) -> None:
    """Answer a request whose body stays unread, without Django, and close the connection."""
    started = time.perf_counter()
    given = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), "")
    request_id = telemetry.request_id({"HTTP_X_REQUEST_ID": given})
    response[telemetry.REQUEST_ID_HEADER] = request_id
    response["Connection"] = "close"
    headers = [(name.lower().encode(), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
    with telemetry.bound_id(request_id):
        telemetry.request_done(
            route=telemetry.UNMATCHED,
            method=scope["method"],
            status=response.status_code,
            started=started,
            path=scope["path"],
        )


async def _serve(scope, body, send) -> None:
    """Run the WSGI application on the buffered request in the pool: one trip there and back for an
    ordinary response; a streamed one (CSV reports) is read a chunk per trip."""
    loop = asyncio.get_running_loop()
    status, headers, content, streamed = await loop.run_in_executor(_pool, _call, build_environ(scope, body))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if streamed is None:
        await send({"type": "http.response.body", "body": content})
        return
    try:
        chunks = iter(streamed)
        while (chunk := await loop.run_in_executor(_pool, next, chunks, None)) is not None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await loop.run_in_executor(_pool, _close, streamed)


def _call(environ) -> tuple[int, list, bytes, object]:
    started = []

    def start_response(status, response_headers, exc_info=None):
        started[:] = [
            int(status[:3]),
            [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response_headers],
        ]

    result = wsgi_application(environ, start_response)
    if getattr(result, "streaming", False):
        return *started, b"", result
    try:
        return *started, b"".join(result), None
    finally:
        _close(result)


def _close(result) -> None:
    if hasattr(result, "close"):
        result.close()
