"""HTTP and pgbench load, interleaved: every round runs every target once, in a rotating order."""

import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg2

from bench.servers import SETTINGS_ENV, Server, ServerConfig
from bench.sql import pgbench_patch_script, pgbench_script
from bench.tools import Load, cpu_seconds, cpu_spent, run_pgbench, run_wrk

BATCH_USERS = 1000  # user ids in each request of batch.lua


@dataclass
class Target:
    """One thing under load: a server config serving an app with a wrk script, or pgbench (config None)
    running the SQL of the GET, or of the PATCH when the script is patch.lua."""

    label: str
    config: ServerConfig | None
    app: str = "service"
    script: str = "get.lua"
    dsn: str = ""
    connections: int = 16
    token: str = ""  # when the target's database has its own token
    settings: str = "default"  # a key of SETTINGS_ENV
    runs: list[Load] = field(default_factory=list)

    @property
    def users_per_request(self) -> int:
        return BATCH_USERS if self.script == "batch.lua" else 1


@dataclass(frozen=True)
class LoadSettings:
    seconds: int
    warmup: int
    rounds: int
    port: int
    token: str
    patch_segments: int = 10
    actor: str = ""  # the token's name: history rows of the PATCH references carry it too


def measure(target: Target, users: int, settings: LoadSettings) -> Load:
    if target.config is None:
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            if target.script == "patch.lua":
                script.write(pgbench_patch_script(users, settings.patch_segments, settings.actor))
            else:
                script.write(pgbench_script(users))
        try:
            return run_pgbench(
                dsn=target.dsn, script=Path(script.name), seconds=settings.seconds, connections=target.connections
            )
        finally:
            Path(script.name).unlink()
    token = target.token or settings.token
    env = {"DATABASE_URL": target.dsn, "BENCH_TOKEN": token, **SETTINGS_ENV[target.settings]}
    wrk_env = {
        "BENCH_USERS": str(users),
        "BENCH_TOKEN": token,
        "BENCH_PATCH_SEGMENTS": str(settings.patch_segments),
        "BENCH_BATCH": str(BATCH_USERS),
    }
    with Server(target.config, target.app, settings.port, env) as server:
        if settings.warmup:
            run_wrk(
                url=server.url, script="get.lua", seconds=settings.warmup, connections=target.connections, env=wrk_env
            )
        pids = server.pids() + database_pids(target.dsn)  # the connections stay open after the warm-up
        before = cpu_seconds(pids)
        load = run_wrk(
            url=server.url, script=target.script, seconds=settings.seconds, connections=target.connections,
            env=wrk_env,
        )  # fmt: skip
        spent = cpu_spent(before, cpu_seconds(pids))
        return replace(load, cpu_ms=spent * 1000 / load.requests if load.requests and spent else float("nan"))


def database_pids(dsn: str) -> list[int]:
    """The server processes of the database's open connections (the app's, and a worker's if one runs)."""
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            pids = [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()
    return [pid for pid in pids if _is_postgres(pid)]  # none when the server runs on another machine


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def interleave(targets: list[Target], users_of, settings: LoadSettings, log) -> None:
    """Run `rounds` rounds; round i starts at target i so that no target always follows the same one."""
    for number in range(settings.rounds):
        shift = number % len(targets)
        for target in targets[shift:] + targets[:shift]:
            measure_round(target, users_of(target), settings, f"round {number + 1} {target.label}", log)


def measure_round(target: Target, users: int, settings: LoadSettings, name: str, log) -> None:
    """Measure the target once more and log it as `name`; a failed run counts as NaN."""
    try:
        result = measure(target, users, settings)
    except (subprocess.CalledProcessError, RuntimeError, ValueError, psycopg2.Error) as exc:
        log(f"{name}: failed: {exc}")
        result = Load(rps=float("nan"), p50_ms=float("nan"), p99_ms=float("nan"), errors=-1, requests=0)
    target.runs.append(result)
    log(
        f"{name}: {result.rps:,.0f} rps, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, errors {result.errors}"
    )
