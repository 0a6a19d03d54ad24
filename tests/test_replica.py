"""Reads from a real streaming replica (DATABASE_REPLICA_URL): a private primary and a replica made with
initdb and pg_basebackup -R, served by a real gunicorn. Replay paused, replica stopped under load."""

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

VERSIONS = 40  # segments V0..V39: PATCH number i adds V{i}, so a user's segment count is its version


def _sql(cluster, sql: str, params=()):
    with closing(cluster.connect()) as conn, conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _caught_up(primary, replica) -> None:
    position = _sql(primary, "SELECT pg_current_wal_lsn()")[0]
    deadline = time.monotonic() + 20
    while not _sql(replica, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position])[0]:
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


def _setup(manage, cluster, replica) -> str:
    """A token, users 1..20 and segments V0..V39 on the primary, replayed by the replica; the token."""
    token = manage("create_api_token", "replica-tests", url=cluster.url).strip().splitlines()[-1]
    with closing(cluster.connect()) as conn, conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO users_user (id, created_at) SELECT i, now() FROM generate_series(1, 20) i")
        cursor.execute("SELECT set_config('segments.actor', 'tests', true)")  # who: the journal's segment events
        cursor.execute(
            "INSERT INTO segments_segment (slug, description, rollout_percent, created_at, updated_at)"
            " SELECT 'V' || i, '', 0, now(), now() FROM generate_series(0, %s) i",
            [VERSIONS - 1],
        )
    _caught_up(cluster, replica)
    return token


def _health(server) -> dict:
    response = server.call(server.session(""), "GET", "/api/health/")
    assert response.status_code == 200, response.content
    return response.json()


def _wait_health(server, replica_state: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (state := _health(server).get("replica")) != replica_state:
        assert time.monotonic() < deadline, f"replica {state!r}, expected {replica_state!r}"
        time.sleep(0.1)


def test_replay_paused__reads_from_the_replica_within_the_bound_then_from_the_primary(
    gunicorn, manage, cluster, replica
):
    token = _setup(manage, cluster, replica)
    env = {"DATABASE_REPLICA_URL": replica.url, "SEGMENTER_REPLICA_MAX_LAG": "6"}
    with gunicorn(cluster.url, workers=1, threads=2, **env) as server:
        session = server.session(token)
        _wait_health(server, "ok")
        assert server.call(session, "PATCH", "/api/v1/users/1/segments/", {"add": ["V0"]}).status_code == 200
        _caught_up(cluster, replica)
        _sql(replica, "SELECT pg_wal_replay_pause()")
        paused = time.monotonic()
        assert server.call(session, "PATCH", "/api/v1/users/1/segments/", {"add": ["V1"]}).json()["segments"] == [
            "V0",
            "V1",
        ]

        # Within the bound the replica answers: it has not replayed the second PATCH.
        stale = server.call(session, "GET", "/api/v1/users/1/segments/").json()["segments"]
        assert time.monotonic() - paused < 6, "too slow to see the replica's answer within the bound"
        assert stale == ["V0"]

        # Past the bound every read goes to the primary, and health says so while staying 200.
        _wait_health(server, "lagging", timeout=15)
        paths = {
            "/api/v1/users/1/segments/": lambda body: body["segments"],
            "/api/get_user_segments?user_id=1": lambda body: body["segments"],
            "/api/v1/users/1/": lambda body: sorted(m["segment"] for m in body["memberships"]),
        }
        for path, slugs in paths.items():
            assert slugs(server.call(session, "GET", path).json()) == ["V0", "V1"], path
        batch = server.call(session, "POST", "/api/v1/users/segments/", {"user_ids": [1]}).json()
        assert batch["users"] == [{"user_id": 1, "segments": ["V0", "V1"]}]
        history = server.call(session, "GET", f"/api/v1/users/1/history/?from={time.strftime('%Y-%m')}").json()
        assert [event["segment"] for event in history["results"]] == ["V0", "V1"]

        _sql(replica, "SELECT pg_wal_replay_resume()")
        _wait_health(server, "ok")
        assert server.call(session, "GET", "/api/v1/users/1/segments/").json()["segments"] == ["V0", "V1"]


def test_patch_then_get__other_connection__never_older_than_the_lag_bound(gunicorn, manage, cluster, replica):
    token = _setup(manage, cluster, replica)
    bound = 1.0
    with gunicorn(cluster.url, workers=2, threads=2, DATABASE_REPLICA_URL=replica.url) as server:
        writer, reader = server.session(token), server.session(token)
        _wait_health(server, "ok")
        written: list[float] = []  # written[i]: when PATCH i was answered (committed before that)
        violations, reads = [], 0
        for version in range(VERSIONS):
            if version == VERSIONS // 3:
                _sql(replica, "SELECT pg_wal_replay_pause()")
            if version == 2 * VERSIONS // 3:
                _sql(replica, "SELECT pg_wal_replay_resume()")
            response = server.call(writer, "PATCH", "/api/v1/users/2/segments/", {"add": [f"V{version}"]})
            assert response.status_code == 200, response.content
            written.append(time.monotonic())
            for _ in range(3):
                started = time.monotonic()
                seen = len(server.call(reader, "GET", "/api/v1/users/2/segments/").json()["segments"])
                required = sum(1 for at in written if at <= started - bound)
                reads += 1
                if seen < required:
                    violations.append((version, seen, required))
                time.sleep(0.05)  # the replay pause then spans about 2.5 s: past the 1 s bound
        assert reads == 3 * VERSIONS
        assert violations == []
        assert server.statuses.keys() == {200}


def test_replica_stopped__under_load__no_errors_and_health_says_down(gunicorn, manage, cluster, replica, tmp_path):
    token = _setup(manage, cluster, replica)
    reports = {"MEDIA_ROOT": str(tmp_path), "SEGMENTER_REPORT_RATE": "100000/min"}
    with gunicorn(cluster.url, workers=2, threads=4, DATABASE_REPLICA_URL=replica.url, **reports) as server:
        _wait_health(server, "ok")
        stop_at = time.monotonic() + 2
        statuses = []

        def load(worker: int) -> None:
            session = server.session(token)
            requests = [
                ("GET", f"/api/v1/users/{worker + 1}/segments/", None),
                ("GET", f"/api/get_user_segments?user_id={worker + 1}", None),
                ("POST", "/api/v1/users/segments/", {"user_ids": [1, 2, 3, 999]}),
                ("GET", f"/api/v1/users/{worker + 1}/history/?from={time.strftime('%Y-%m')}", None),
                ("POST", "/api/v1/reports/", {"from": time.strftime("%Y-%m")}),
            ]
            while time.monotonic() < stop_at + 4:
                for method, path, body in requests:
                    statuses.append(server.call(session, method, path, body).status_code)

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(load, worker) for worker in range(6)]
            time.sleep(max(0.0, stop_at - time.monotonic()))
            replica.stop("immediate")
            for future in futures:
                future.result()
        assert _health(server)["replica"] == "down"
        assert len(statuses) > 50
        assert set(statuses) <= {200, 201}, server.log_tail()
