"""The external load generators (wrk, pgbench): presence checks, runs, and parsing of their output."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Load:
    """One load run: requests per second, latency percentiles in milliseconds, and error counts."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    added: int = 0
    removed: int = 0
    cpu_ms: float = float("nan")  # CPU ms a request of the server's processes and the database's backends
    max_ms: float = float("nan")  # the worst request of the run


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user and system) each of these processes has used so far; gone or unreadable ones left out."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples by the processes in both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def require_tools() -> None:
    """wrk and pgbench must be on PATH; wrk is installed with apt-get when running as root."""
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing Debian's wrk with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    missing = [tool for tool in ("wrk", "pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"bench needs {', '.join(missing)} on PATH: install them with "
            "`apt-get install wrk postgresql-client` (pgbench ships with the PostgreSQL client) and run again."
        )


def parse_wrk(output: str) -> Load:
    """Read the BENCH_JSON line that bench/common.lua prints at the end of a wrk run."""
    match = re.search(r"^BENCH_JSON (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"no BENCH_JSON line in wrk output:\n{output}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = sum(data[key] for key in ("connect", "read", "write", "status", "timeout"))
    return Load(
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        requests=data["requests"],
        added=data["added"],
        removed=data["removed"],
    )


def run_wrk(*, url: str, script: str, seconds: int, connections: int, env: dict[str, str]) -> Load:
    command = [
        "wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(HERE / script), url,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "BENCH_DIR": str(HERE), **env}
    )
    return parse_wrk(result.stdout)


def parse_pgbench(output: str) -> Load:
    """tps and latency from `pgbench` (latency average only: pgbench prints no percentiles)."""
    tps = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", output, re.MULTILINE)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if tps is None or latency is None or processed is None:
        raise ValueError(f"unexpected pgbench output:\n{output}")
    average = float(latency.group(1))
    return Load(
        rps=float(tps.group(1)),
        p50_ms=average,
        p99_ms=float("nan"),
        errors=int(failed.group(1)) if failed else 0,
        requests=int(processed.group(1)),
    )


def run_pgbench(*, dsn: str, script: Path, seconds: int, connections: int) -> Load:
    command = [
        "pgbench", "-n", "-M", "prepared", f"-c{connections}", f"-j{min(2, connections)}", f"-T{seconds}",
        "-f", str(script), dsn,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_pgbench(result.stdout)
