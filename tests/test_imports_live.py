"""Imports run by real `manage.py worker` processes: a worker killed mid-import, PostgreSQL restarted mid-import
(a private cluster), and PATCHes through a real gunicorn while an import applies its chunks. Small chunks
(SEGMENTER_IMPORT_CHUNK_LINES) make a short file take many transactions."""

import io
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from core.auth import token_create
from events.models import Event
from segments.models import HistoryEvent, Import, Membership
from segments.services import import_create, segment_create
from users.services import users_seed

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def current() -> Import:
    return Import.objects.get()


def members(slug: str) -> set[int]:
    return set(Membership.objects.filter(segment__slug=slug).values_list("user_id", flat=True))


def test_import__worker_killed_mid_import__next_worker_resumes_and_applies_each_line_once(
    start_worker, connections_ended
):
    lines = 8_000
    users_seed(count=lines, start=1, actor="t")
    segment_create(slug="BIG", actor="t")
    body = io.BytesIO(b"".join(b"%d\n" % user_id for user_id in range(1, lines + 1)))
    queued, _ = import_create(slug="BIG", body=body, format="csv", mode="add", actor="pipeline")
    chunks = {"SEGMENTER_IMPORT_CHUNK_LINES": "200"}

    first = start_worker(**chunks)
    assert wait_for(lambda: current().done > 0, 30), first.lines
    first.process.kill()
    first.process.wait()
    connections_ended()  # a chunk whose commit was under way when the worker died is in now, or never
    at_kill = current()
    second = start_worker(**chunks)
    # The dead worker's job runs again once the stalled-job retry sees no heartbeat for 10 s (about 17 s at most).
    assert wait_for(lambda: current().status == Import.Status.SUCCEEDED, 40, interval=0.2), (current(), second.lines)

    finished = current()
    assert at_kill.status == Import.Status.RUNNING and 0 < at_kill.done < lines  # killed mid-import, really
    assert (finished.total, finished.done, finished.added, finished.already_member) == (lines, lines, lines, 0)
    assert [job["count"] for job in second.jobs("run_import")] == [lines]
    assert members("BIG") == set(range(1, lines + 1))
    added = HistoryEvent.objects.filter(segment_slug="BIG", operation="added", source="import", actor="pipeline")
    assert added.count() == added.values("user_id").distinct().count() == lines
    assert Event.objects.filter(type="membership.added", segment="BIG", source="import").count() == lines
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"segments_import_stage_{queued.pk}"])
        assert cursor.fetchone()[0] is None
    assert not (settings.MEDIA_ROOT / queued.file_name).exists()


def test_import__users_patched_through_the_api_meanwhile__nothing_lost_and_history_replays(
    start_worker, gunicorn, database_url, assert_database_history_replays, deadlocks
):
    """Clients PATCH users of the lines being applied (both segments, each user by one client at a time) while
    the import, posted to the API, runs; a monitor follows it through GET. Every PATCH stands afterwards."""
    lines, clients, chunk = 4_000, 6, 100
    users_seed(count=lines, start=1, actor="t")
    for slug in ("BIG", "OTHER"):
        segment_create(slug=slug, actor="t")
    token = token_create(name="load")[1]
    deadlocks_before = deadlocks()
    worker = start_worker(SEGMENTER_IMPORT_CHUNK_LINES=str(chunk))
    other_expected: dict[int, bool] = {}  # user -> member of OTHER after its last PATCH
    big_last: dict[int, str] = {}  # user -> the last change of BIG its PATCHes asked for
    seen: list[tuple[str, int]] = []  # (status, done) as GET showed them
    finished = threading.Event()

    with gunicorn(database_url(), workers=2, MEDIA_ROOT=str(settings.MEDIA_ROOT)) as server:
        session = server.session(token)
        file = "".join(f"{user_id}\n" for user_id in range(1, lines + 1)) + "99999999\n"  # and one unknown user
        posted = session.post(
            f"{server.base_url}/api/v1/segments/BIG/imports/", data=file, headers={"Content-Type": "text/csv"}
        )
        assert posted.status_code == 202, posted.text
        path = f"/api/v1/imports/{posted.json()['id']}/"

        def monitor() -> None:
            deadline = time.monotonic() + 60
            try:
                while time.monotonic() < deadline:
                    shown = server.call(session, "GET", path).json()
                    seen.append((shown["status"], shown["done"]))
                    if shown["status"] in ("succeeded", "failed"):
                        return
                    time.sleep(0.1)
            finally:
                finished.set()

        def client(index: int) -> None:
            rng, own = random.Random(index), server.session(token)
            while not finished.is_set():
                near = (seen[-1][1] if seen else 0) + rng.randrange(3 * chunk)  # around the chunk being applied
                user_id = min(near - near % clients + index + 1, lines - clients + index + 1)  # this client's users
                big, other = rng.choice(["add", "remove", None]), rng.choice(["add", "remove"])
                body = {
                    "add": [slug for slug, change in (("BIG", big), ("OTHER", other)) if change == "add"],
                    "remove": [slug for slug, change in (("BIG", big), ("OTHER", other)) if change == "remove"],
                }
                response = server.call(own, "PATCH", f"/api/v1/users/{user_id}/segments/", body)
                assert response.status_code == 200, response.text
                other_expected[user_id] = other == "add"
                if big:
                    big_last[user_id] = big

        with ThreadPoolExecutor(max_workers=clients + 1) as pool:
            for future in [pool.submit(monitor), *(pool.submit(client, index) for index in range(clients))]:
                future.result(timeout=90)

    finished_import = current()
    assert finished_import.status == Import.Status.SUCCEEDED, finished_import.error
    assert finished_import.total == finished_import.done == lines + 1
    assert finished_import.added + finished_import.already_member == lines and finished_import.unknown_users == 1
    assert [done for _, done in seen] == sorted(done for _, done in seen)  # progress only moves forward
    assert set(server.statuses) == {200}, server.statuses
    assert worker.stop() == 0  # a chunk that deadlocked would be retried: only the count tells
    assert deadlocks() == deadlocks_before
    imported = HistoryEvent.objects.filter(source="import").order_by("at")
    first, last = imported.first().at, imported.last().at
    during = HistoryEvent.objects.filter(source="api", at__gt=first, at__lt=last).count()
    assert during >= 30, f"only {during} PATCH changes while the import ran"  # the race really happened
    print(f"{server.requests_made} requests, {during} PATCH changes during the import's {last - first}")

    assert members("OTHER") == {user_id for user_id, member in other_expected.items() if member}
    big = members("BIG")
    assert {user_id for user_id in range(1, lines + 1) if big_last.get(user_id) != "remove"} <= big
    for user_id, change in big_last.items():  # a PATCH's add stands; its removal, unless the import came later
        last_event = HistoryEvent.objects.filter(user_id=user_id, segment_slug="BIG").order_by("at", "id").last()
        assert (user_id in big) == (change == "add" or last_event.source == "import"), (user_id, change)
    assert assert_database_history_replays() > lines


def test_import__postgresql_restarted_mid_import__resumed_by_the_same_worker_process(
    cluster, manage, server_env, start_worker, tmp_path
):
    """A chunk cut by the restart is rolled back; the job that lost its connection is retried by the same
    worker process (it starts its task queue's worker again) and the import resumes from `done`."""
    lines = 8_000

    def read(sql: str):
        with cluster.connect() as conn:
            return conn.execute(sql).fetchone()

    def state():
        try:
            return read("SELECT status, done, total, added, already_member FROM segments_import")
        except psycopg.OperationalError:
            return ("down", 0, None, 0, 0)

    manage("seed_users", "--count", str(lines), "--start", "1", url=cluster.url)
    manage(
        "shell", "-c", "from segments.services import segment_create as c; c(slug='BIG', actor='t')", url=cluster.url
    )
    file = tmp_path / "members.csv"
    file.write_text("".join(f"{user_id}\n" for user_id in range(1, lines + 1)))
    subprocess.run(
        [sys.executable, "manage.py", "import_members", "BIG", str(file), "--no-wait"],
        cwd=settings.BASE_DIR,
        env=server_env(cluster.url, MEDIA_ROOT=str(settings.MEDIA_ROOT)),
        check=True,
        capture_output=True,
    )
    worker_env = {"DATABASE_URL": cluster.url, "SEGMENTER_IMPORT_CHUNK_LINES": "200"}
    first = start_worker(**worker_env)
    assert wait_for(lambda: state()[1] > 0, 30), first.lines

    cluster.stop("fast")
    cluster.start()
    at_restart = state()
    assert wait_for(lambda: state()[0] == "succeeded", 60, interval=0.2), (state(), first.lines[-5:])
    assert first.process.poll() is None  # the same worker: it started again after losing its database

    assert at_restart[0] == "running" and 0 < at_restart[1] < lines
    assert state() == ("succeeded", lines, lines, lines, 0)
    assert read("SELECT count(*) FROM segments_membership") == (lines,)
    assert read("SELECT count(*), count(DISTINCT user_id) FROM segments_historyevent WHERE source = 'import'") == (
        lines,
        lines,
    )
