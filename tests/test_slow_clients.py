"""Slow clients against the production server (gunicorn.conf.py): they hold sockets, never the service.

Each test starts gunicorn as gunicorn.conf.py sets it up and talks to it over loopback sockets.
"""

import socket
import threading
import time

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from core.auth import token_create
from segments.models import Import, Segment
from segments.services import AddItem, memberships_update, segment_create
from users.services import users_register

pytestmark = pytest.mark.django_db(transaction=True)
HEADER_TRICKLERS = 100
BODY_TRICKLERS = 30
TRICKLE_SECONDS = 6
STEP = 0.5  # seconds between the bytes each slow client sends


@pytest.fixture
def member(transactional_db) -> str:
    """User 7 in segment S1; returns a writing token."""
    users_register(user_ids=[7], actor="setup")
    segment_create(slug="S1", actor="setup")
    memberships_update(user_id=7, add=[AddItem(slug="S1")], remove=[], source="api", actor="setup")
    return token_create(name="slow")[1]


def port_of(server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def slow_sockets(port: int, token: str) -> list[socket.socket]:
    """Clients that sent a request line (and for some, the headers of a PATCH) and now trickle the rest."""
    sockets = []
    for index in range(HEADER_TRICKLERS + BODY_TRICKLERS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if index < HEADER_TRICKLERS:
            sock.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        else:
            sock.sendall(
                b"PATCH /api/v1/users/7/segments/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
                + f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
        sockets.append(sock)
    return sockets


def trickle(sockets: list[socket.socket], stop: threading.Event) -> int:
    """Send one more header line or body byte on every socket each STEP; returns how many stayed open."""
    open_sockets = list(sockets)
    while not stop.wait(STEP):
        for sock in list(open_sockets):
            try:
                sock.sendall(b"X-Slow: 1\r\n" if sock in sockets[:HEADER_TRICKLERS] else b" ")
            except OSError:
                open_sockets.remove(sock)
    return len(open_sockets)


def test_slowloris__health_and_hot_get_answer_within_a_second(database_url, gunicorn, member):
    with gunicorn(database_url()) as server:
        sockets = slow_sockets(port_of(server), member)
        stop, result = threading.Event(), {}
        thread = threading.Thread(target=lambda: result.update(open=trickle(sockets, stop)))
        thread.start()
        timings = []
        try:
            deadline = time.monotonic() + TRICKLE_SECONDS
            while time.monotonic() < deadline:
                for path, headers in (
                    ("/api/health/", {}),
                    ("/api/v1/users/7/segments/", {"Authorization": f"Bearer {member}"}),
                ):
                    start = time.monotonic()
                    response = requests.get(f"{server.base_url}{path}", headers=headers, timeout=5)
                    timings.append((path, response.status_code, time.monotonic() - start))
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(timeout=10)
            for sock in sockets:
                sock.close()
    assert result["open"] == HEADER_TRICKLERS + BODY_TRICKLERS  # the slow clients were held, not dropped
    assert len(timings) >= 10
    assert {status for _, status, _ in timings} == {200}, timings
    assert max(seconds for _, _, seconds in timings) < 1.0, timings


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(status line and headers, whatever already followed them) of the next response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("path", ["/api/v1/users/7/segments/", "/api/health/"])
def test_head_then_get_on_one_connection__head_has_no_body(database_url, gunicorn, member, path):
    with gunicorn(database_url()) as server, socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.settimeout(5)
        request = f"{{}} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {member}\r\n\r\n"
        sock.sendall(request.format("HEAD").encode())
        head, rest = read_head(sock)  # any status: /api/health/ has no HEAD
        time.sleep(0.3)  # a body, if any, would have arrived by now
        sock.setblocking(False)
        try:
            rest += sock.recv(65536)
        except BlockingIOError:
            pass
        sock.setblocking(True)
        assert rest == b""
        sock.sendall(request.format("GET").encode())
        head, body = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"content-length" in head.lower()


def test_oversized_api_body__413_without_waiting_for_it(database_url, gunicorn, member):
    with gunicorn(database_url()) as server, socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.settimeout(5)
        sock.sendall(
            b"PATCH /api/v1/users/7/segments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {2 * 1024 * 1024}\r\nAuthorization: Bearer {member}\r\n\r\n".encode()
        )
        head, _ = read_head(sock)  # no byte of the body was sent
    assert head.startswith(b"HTTP/1.1 413"), head


def test_csv_stream__sent_in_chunks_as_it_is_made(database_url, gunicorn, member):
    with gunicorn(database_url()) as server:
        response = requests.get(
            f"{server.base_url}/api/v1/reports/history.csv",
            params={"from": "2000-01", "to": "9999-12"},
            headers={"Authorization": f"Bearer {member}"},
            timeout=10,
        )
    assert response.status_code == 200
    assert response.headers.get("Transfer-Encoding") == "chunked"  # not buffered whole behind a Content-Length
    assert "Content-Length" not in response.headers
    assert response.text.startswith("7;S1;added;")


def refused_head(port: int, request: bytes) -> bytes:
    """The status line and headers answering `request` (headers announcing a body of which no byte is sent)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)  # an answer that waits for the body never comes: the recv fails
        sock.sendall(request)
        return read_head(sock)[0]


@pytest.mark.parametrize("path", ["/admin/login/", "/metrics", "/no-such-page/"])
def test_700_mib_body_outside_the_api__413_without_waiting_for_it(database_url, gunicorn, member, path):
    with gunicorn(database_url(), workers=1) as server:
        head = refused_head(
            port_of(server),
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {700 * 1024 * 1024}\r\n\r\n".encode(),
        )
    assert head.startswith(b"HTTP/1.1 413"), head


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, b"401"), ("Bearer sgm_not-a-token", b"401"), ("Basic eDp5", b"401"), ("read-only", b"403")],
)
def test_150_mib_import__no_writing_token__refused_without_reading_the_body(
    database_url, gunicorn, member, authorization, status
):
    if authorization == "read-only":
        authorization = f"Bearer {token_create(name='reader', read_only=True)[1]}"
    header = f"Authorization: {authorization}\r\n" if authorization else ""
    with gunicorn(database_url(), workers=1) as server:
        head = refused_head(
            port_of(server),
            f"POST /api/v1/segments/S1/imports/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n{header}"
            f"Content-Length: {150 * 1024 * 1024}\r\n\r\n".encode(),
        )
    assert head.startswith(b"HTTP/1.1 " + status), head


def admin_session(staff: bool) -> tuple[str, str]:
    """(session cookie, CSRF secret) of a signed-in user, a superuser or not staff; the live server shares the
    database."""
    user = User.objects.create_user(
        username=f"pm-{staff}", password="unused-password-1", is_staff=staff, is_superuser=staff
    )
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value, "c" * 32


@pytest.mark.parametrize("staff", [False, True])
def test_admin_import_upload__large_body__read_only_for_a_staff_session(
    database_url, gunicorn, member, settings, staff
):
    segment = Segment.objects.get(slug="S1")
    session, csrf = admin_session(staff)
    csv = b"7\n" * (1024 * 1024)  # 2 MiB: over the 1 MiB of every other body
    path = f"/admin/segments/segment/{segment.pk}/import/"
    server_env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "DJANGO_SECRET_KEY": settings.SECRET_KEY}  # signs sessions
    with gunicorn(database_url(), workers=1, **server_env) as server:
        anonymous = refused_head(
            port_of(server),
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {150 * 1024 * 1024}\r\n\r\n".encode(),
        )
        response = requests.post(
            f"{server.base_url}{path}",
            files={"file": ("members.csv", csv, "text/csv")},
            data={"mode": "add", "csrfmiddlewaretoken": csrf},
            cookies={settings.SESSION_COOKIE_NAME: session, settings.CSRF_COOKIE_NAME: csrf},
            allow_redirects=False,
            timeout=30,
        )
    assert anonymous.startswith(b"HTTP/1.1 403"), anonymous
    if staff:
        assert response.status_code == 302, response.text[:500]
        assert "/imports/" in response.headers["Location"]
        assert Import.objects.filter(segment_id=segment.pk).count() == 1
    else:
        assert response.status_code == 403, response.text[:500]
        assert response.json()["code"] == "permission_denied"
        assert not Import.objects.exists()


@pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/users/7/segments/"])
def test_trickled_body__408_and_closed_once_its_deadline_passes(database_url, gunicorn, member, path):
    # 2 bytes every 5 s against SEGMENTER_BODY_TIMEOUT=2; the answer may take up to 60 s, 30 times the
    # deadline, so a loaded machine cannot fail it. The client sends nothing more once the answer has come
    # (bytes the server never reads would make its close a reset, which could discard the answer).
    with (
        gunicorn(database_url(), workers=1, SEGMENTER_BODY_TIMEOUT="2") as server,
        socket.create_connection(("127.0.0.1", port_of(server))) as sock,
    ):
        sock.settimeout(5)
        sock.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            f"Authorization: Bearer {member}\r\n\r\n  ".encode()
        )
        answer, started = b"", time.monotonic()
        while time.monotonic() - started < 60:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"  ")
                continue
            if not chunk:
                break  # the server closed the connection after its answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"code":"request_timeout"' in answer.replace(b" ", b"")
