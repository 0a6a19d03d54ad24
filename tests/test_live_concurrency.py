"""Concurrency against a real gunicorn on PostgreSQL: afterwards memberships equal the replay of history.

Each test runs many clients at once (threads with their own HTTP sessions, against several
gunicorn worker processes), then checks that no request failed, that no deadlock was reported
and that the history invariant holds (segments/tests/history_replay.py).
"""

import csv
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.auth import token_create
from segments.models import HistoryEvent, Membership, Segment
from segments.services import is_covered, rollout_apply, segment_create
from users.models import User
from users.services import users_register

pytestmark = pytest.mark.django_db(transaction=True)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def run_clients(count: int, client) -> None:
    """Run `client(index)` in `count` threads at once; re-raise the first error any of them hit."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        for future in [pool.submit(client, index) for index in range(count)]:
            future.result(timeout=120)


@pytest.fixture
def token() -> str:
    return token_create(name="load")[1]


@pytest.fixture
def new_deadlocks(deadlocks):
    """A function giving the number of deadlocks PostgreSQL detected in the test database since the test began."""
    before = deadlocks()
    return lambda: deadlocks() - before


def assert_clean_run(server, allowed: set[int], new_deadlocks) -> None:
    assert set(server.statuses) <= allowed, server.statuses
    assert new_deadlocks() == 0
    print(f"{server.requests_made} requests: {dict(server.statuses)}")


def test_live__many_clients_update_the_same_users__history_replays(
    assert_database_history_replays, gunicorn, token, new_deadlocks, served_database
):
    users_register(user_ids=[1, 2, 3], actor="setup")
    slugs = [f"S{i}" for i in range(6)]
    for slug in slugs:
        segment_create(slug=slug, actor="setup")

    with gunicorn(served_database.url, **served_database.env) as server:

        def client(index: int) -> None:
            rng, session = random.Random(index), server.session(token)
            for _ in range(20):
                user_id, chosen = rng.randint(1, 3), rng.sample(slugs, 4)
                add = [chosen[0], {"slug": chosen[1], "ttl_seconds": rng.randint(60, 600)}]
                body = {"add": add, "remove": chosen[2:]}
                assert server.call(session, "PATCH", f"/api/v1/users/{user_id}/segments/", body).status_code == 200
                response = server.call(session, "GET", f"/api/v1/users/{user_id}/segments/")
                assert response.status_code == 200
                assert SECURITY_HEADERS.items() <= response.headers.items()  # the hot path's answer too

        run_clients(10, client)

        forged = requests.get(
            f"{server.base_url}/api/v1/users/1/segments/",
            headers={"Authorization": f"Bearer {token}", "Host": "evil.example"},
            timeout=10,
        )
        assert forged.status_code == 400  # a host outside ALLOWED_HOSTS, on the hot path as elsewhere

    assert_clean_run(server, {200}, new_deadlocks)
    assert server.statuses[200] == 10 * 20 * 2
    assert assert_database_history_replays() >= 10 * 20
    assert Membership.objects.filter(user_id__in=[1, 2, 3]).count() > 0


def test_live__rollouts_change_while_users_register_and_update__covered_users_are_members(
    assert_database_history_replays, gunicorn, token, new_deadlocks, served_database
):
    for slug in ("R1", "R2", "M1", "M2"):
        segment_create(slug=slug, actor="setup")
    users_register(user_ids=list(range(1, 101)), actor="setup")

    with gunicorn(served_database.url, **served_database.env) as server:

        def client(index: int) -> None:
            rng, session = random.Random(index), server.session(token)
            for step in range(12):
                if index < 2:
                    body = {"percent": rng.choice([0, 5, 25.5, 50, 99.99, 100])}
                    assert server.call(session, "POST", f"/api/v1/segments/R{index + 1}/rollout/", body).ok
                elif index < 6:
                    first = 1000 + index * 1000 + step * 20
                    body = {"user_ids": list(range(first, first + 19))}
                    assert server.call(session, "POST", "/api/v1/users/", body).status_code == 200
                    assert server.call(session, "PUT", f"/api/v1/users/{first + 19}/").status_code == 201
                else:
                    body = {"add": [rng.choice(["M1", "M2"])], "remove": [rng.choice(["M1", "M2"])]}
                    if body["add"] == body["remove"]:
                        body["remove"] = []
                    response = server.call(session, "PATCH", f"/api/v1/users/{rng.randint(1, 100)}/segments/", body)
                    assert response.status_code == 200

        run_clients(10, client)

    assert_clean_run(server, {200, 201}, new_deadlocks)
    assert assert_database_history_replays() > 0
    all_users = list(User.objects.values_list("id", flat=True))
    assert len(all_users) == 100 + 4 * 12 * 20
    for segment in Segment.objects.filter(slug__in=["R1", "R2"]):
        covered = {user_id for user_id in all_users if is_covered(segment.slug, user_id, segment.rollout_percent)}
        members = set(Membership.objects.filter(segment=segment).values_list("user_id", flat=True))
        assert members == covered, (segment.slug, segment.rollout_percent, len(members ^ covered))


def test_live__segment_deletion_races_with_updates__history_replays(
    assert_database_history_replays, gunicorn, token, new_deadlocks, served_database
):
    for slug in ("D1", "D2", "K"):
        segment_create(slug=slug, actor="setup")
    users_register(user_ids=list(range(1, 21)), actor="setup")

    with gunicorn(served_database.url, **served_database.env) as server:

        def client(index: int) -> None:
            rng, session = random.Random(index), server.session(token)
            for step in range(20):
                if index in (1, 2):  # new users join the rollouts of segments that are being deleted
                    first = 1000 + index * 1000 + step * 10
                    body = {"user_ids": list(range(first, first + 10))}
                    assert server.call(session, "POST", "/api/v1/users/", body).status_code == 200
                elif index == 0:
                    slug = ["D1", "D2"][step % 2]
                    assert server.call(session, "DELETE", f"/api/v1/segments/{slug}/").status_code in (204, 404)
                    body = {"rollout_percent": rng.choice([0, 30, 60])}
                    assert server.call(session, "PUT", f"/api/v1/segments/{slug}/", body).status_code in (200, 201)
                else:
                    add, remove = rng.sample(["D1", "D2", "K"], 2)
                    body = {"add": [add], "remove": [remove]}
                    response = server.call(session, "PATCH", f"/api/v1/users/{rng.randint(1, 20)}/segments/", body)
                    assert response.status_code == 200 or response.json()["code"] == "segment_not_found"

        run_clients(8, client)

    assert_clean_run(server, {200, 201, 204, 404}, new_deadlocks)
    assert assert_database_history_replays() > 0
    assert HistoryEvent.objects.filter(source="segment_deleted").exists()


def test_live__two_expiry_sweeps_at_once_during_updates__each_expiry_written_once(
    assert_database_history_replays, gunicorn, server_env, token, new_deadlocks, served_database
):
    segment_create(slug="T", actor="setup")
    segment_create(slug="U", actor="setup")
    users_register(user_ids=list(range(1, 2001)), actor="setup")
    rollout_apply(slug="T", percent=100, actor="setup")
    with connection.cursor() as cursor:  # time passes: every membership of T is due, none is swept yet
        cursor.execute("UPDATE segments_historyevent SET at = at - interval '2 minutes'")
        cursor.execute(
            "UPDATE segments_membership SET added_at = added_at - interval '2 minutes',"
            " expires_at = now() - interval '1 minute'"
        )
    sweep = [sys.executable, "manage.py", "expire_memberships"]
    env = server_env(served_database.url, **served_database.env)

    with gunicorn(served_database.url, **served_database.env) as server:
        sweepers = [subprocess.Popen(sweep, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE) for _ in range(2)]

        def client(index: int) -> None:
            session = server.session(token)
            for user_id in range(index + 1, 2001, 80):
                body = {"add": ["T", "U"]} if user_id % 2 else {"remove": ["T"]}
                assert server.call(session, "PATCH", f"/api/v1/users/{user_id}/segments/", body).status_code == 200

        run_clients(8, client)
        outputs = [sweeper.communicate(timeout=60)[0].decode() for sweeper in sweepers]

    assert [sweeper.returncode for sweeper in sweepers] == [0, 0], outputs
    assert_clean_run(server, {200}, new_deadlocks)
    assert assert_database_history_replays() > 4000
    ttl_events = HistoryEvent.objects.filter(source="ttl", segment_slug="T")
    assert ttl_events.count() == 2000
    assert ttl_events.values("user_id").distinct().count() == 2000


def test_live__manual_adds_race_with_rollout_changes__no_add_is_lost(
    assert_database_history_replays, gunicorn, token, new_deadlocks, served_database
):
    segment_create(slug="R", actor="setup")
    users_register(user_ids=list(range(1, 201)), actor="setup")

    with gunicorn(served_database.url, **served_database.env) as server:

        def client(index: int) -> None:
            session = server.session(token)
            for step in range(16):
                if index == 0:
                    body = {"percent": 100 if step % 2 == 0 else 0}
                    assert server.call(session, "POST", "/api/v1/segments/R/rollout/", body).status_code == 200
                    continue
                user_id = (index - 1) * 25 + step + 1
                response = server.call(session, "PATCH", f"/api/v1/users/{user_id}/segments/", {"add": ["R"]})
                assert response.status_code == 200
                assert "R" in response.json()["segments"], f"user {user_id} was added to R but is not a member"

        run_clients(9, client)

    assert_clean_run(server, {200}, new_deadlocks)
    assert assert_database_history_replays() > 0
    manual = set(Membership.objects.filter(segment__slug="R", source="manual").values_list("user_id", flat=True))
    assert manual == {(index - 1) * 25 + step + 1 for index in range(1, 9) for step in range(16)}


def test_live__user_deletion_races_with_rollout_changes__history_replays(
    assert_database_history_replays, gunicorn, token, new_deadlocks, served_database
):
    segment_create(slug="R", actor="setup")
    users_register(user_ids=list(range(1, 301)), actor="setup")

    with gunicorn(served_database.url, **served_database.env) as server:

        def client(index: int) -> None:
            rng, session = random.Random(index), server.session(token)
            for _ in range(16):
                if index < 2:
                    body = {"rollout_percent": rng.choice([0, 20, 50, 100])}
                    assert server.call(session, "PATCH", "/api/v1/segments/R/", body).status_code == 200
                else:
                    user_id = rng.randint(1, 300)
                    assert server.call(session, "DELETE", f"/api/v1/users/{user_id}/").status_code in (204, 404)
                    assert server.call(session, "PUT", f"/api/v1/users/{user_id}/").status_code in (200, 201)

        run_clients(8, client)

    assert_clean_run(server, {200, 201, 204, 404}, new_deadlocks)
    assert assert_database_history_replays() > 0
    percent = Segment.objects.get(slug="R").rollout_percent
    members = set(Membership.objects.filter(segment__slug="R").values_list("user_id", flat=True))
    assert members == {user_id for user_id in range(1, 301) if is_covered("R", user_id, percent)}


def test_live__one_user_and_one_segment_patched_at_once_while_rollouts_change__report_replays(
    database_url, gunicorn, replay_problems, token, new_deadlocks
):
    """As the defect was found: 16 clients PATCH one user (and many users one segment) while a rollout
    of one of those segments changes; the month's CSV report, in its order, replays to the final state."""
    slugs = [f"S{i}" for i in range(5)]
    for slug in [*slugs, "ONE", "R"]:
        segment_create(slug=slug, actor="setup")
    users_register(user_ids=list(range(1, 41)), actor="setup")

    with gunicorn(database_url()) as server:

        def client(index: int) -> None:
            rng, session = random.Random(index), server.session(token)
            for _ in range(20):
                if index < 2:
                    body = {"percent": rng.choice([0, 30, 70, 100])}
                    assert server.call(session, "POST", "/api/v1/segments/R/rollout/", body).status_code == 200
                    continue
                user_id, chosen = (
                    (1, rng.sample([*slugs, "R"], 3)) if index < 10 else (rng.randint(1, 40), ["ONE", "R"])
                )
                rng.shuffle(chosen)
                body = {"add": chosen[:1], "remove": chosen[1:]}
                assert server.call(session, "PATCH", f"/api/v1/users/{user_id}/segments/", body).status_code == 200

        run_clients(16, client)
        month = timezone.now().strftime("%Y-%m")
        report = server.call(server.session(token), "GET", f"/api/v1/reports/history.csv?from={month}")

    assert_clean_run(server, {200}, new_deadlocks)
    assert report.status_code == 200
    rows = list(csv.reader(report.text.splitlines(), delimiter=";"))
    assert sum(1 for row in rows if row[0] == "1") > 100
    members = {(m.user_id, m.segment.slug) for m in Membership.objects.select_related("segment")}
    assert replay_problems([(int(row[0]), row[1], row[2]) for row in rows], members) == []
