"""This tree against an earlier revision, side by side in one run: `python -m bench.compare REV`.

Both are served by the production server (gunicorn.conf.py's default worker, 3×4) from the same
database and loaded in the same interleaved rounds: the hot GET and the PATCH under the default and
the production HTTPS settings, and the PATCH with SEGMENTER_WRITE_RATE set (a rate never reached).
The earlier revision is `git archive`d into a temporary folder and served with this tree's venv, on
the schema of this tree's migrations (the hot path's tables are the same). With `--own-schema` each
revision is served from a database of its own, migrated and seeded by its own code with the same data
(for a change of what the migrations install, such as the PATCH's function or the triggers that journal
it), and two more rows load the PATCH's SQL alone on each database: pgbench of its one call, and the
call made one at a time on one connection with its server process's CPU a call (bench/webhooks.py
`call_cpu`). Prints a Markdown table: each row's medians and its ratio to the earlier revision's same
row. Finds what a change costs the hot path; the full picture stays `python -m bench`.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench import dataset
from bench.cli import DEFAULT
from bench.load import LoadSettings, Target, measure_round
from bench.markdown import PATCH_SQL, disagreeing, spread
from bench.servers import ROOT, snapshot
from bench.stats import median
from bench.tools import require_tools
from bench.webhooks import CALL_CPU, call_cpu

ROWS = [  # (label, wrk script, settings)
    ("GET /api/v1/users/{id}/segments/", "get.lua", "default"),
    ("GET /api/v1/users/{id}/segments/, production HTTPS settings", "get.lua", "production"),
    ("GET /api/get_user_segments + JSON body, production HTTPS settings", "seed_body.lua", "production"),
    ("PATCH /api/v1/users/{id}/segments/", "patch.lua", "default"),
    ("PATCH /api/v1/users/{id}/segments/, production HTTPS settings", "patch.lua", "production"),
    ("PATCH /api/v1/users/{id}/segments/, SEGMENTER_WRITE_RATE set", "patch.lua", "write rate"),
]
SQL_ROWS = [(PATCH_SQL, "patch.lua"), (CALL_CPU, "call")]  # --own-schema: the PATCH's SQL alone on each database


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("baseline", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="seconds per load run")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--db", default="segmenter_bench_compare")
    parser.add_argument("--reuse", action="store_true", help="keep a database that already has these sizes")
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument(
        "--own-schema", action="store_true", help="each revision on a database migrated by its own code (--db_REV)"
    )
    parser.add_argument("--rows", default="", help="comma list of row numbers (1-based) to keep; all unless given")
    args = parser.parse_args(argv)
    require_tools()
    with tempfile.TemporaryDirectory(prefix="segmenter-compare-") as directory:
        current = snapshot(Path(directory))
        baseline = Path(directory) / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        log(f"{args.baseline} in {baseline}, this tree in {current}")
        sizes = dataset.Sizes(args.users, args.segments, args.per_user, history=0, report_events=0)
        dsn = dataset.build(server=args.postgres, db=args.db, sizes=sizes, reuse=args.reuse, log=log)
        name, token = dataset.token(dsn, "bench-compare")
        settings = LoadSettings(args.seconds, args.warmup, args.rounds, args.port, token, actor=name)
        versions = {args.baseline: (replace(DEFAULT, code=baseline), dsn, token), "this tree": (DEFAULT, dsn, token)}
        if args.own_schema:
            db = f"{args.db}_{re.sub(r'[^a-z0-9]', '_', args.baseline.lower())}"
            old = dataset.build(server=args.postgres, db=db, sizes=sizes, reuse=args.reuse, log=log, code=baseline)
            old_token = dataset.token(old, name, code=baseline)[1]
            versions[args.baseline] = (replace(DEFAULT, code=baseline), old, old_token)
        rows = [(label, script, env) for label, script, env in ROWS]
        rows += [(label, script, None) for label, script in SQL_ROWS] if args.own_schema else []
        keep = {int(n) for n in args.rows.split(",") if n}
        targets = [
            Target(
                f"{label} ({version})", config if env else None, script=script, dsn=db_dsn, settings=env or "default",
                connections=1 if script == "call" else args.connections, token=db_token,
            )
            for number, (label, script, env) in enumerate(rows, 1)
            if not keep or number in keep
            for version, (config, db_dsn, db_token) in versions.items()
        ]  # fmt: skip
        for number in range(settings.rounds):
            shift = number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                if target.script == "call":
                    target.runs.append(call_cpu(target.dsn, args.users, settings))
                    log(f"round {number + 1} {target.label}: {target.runs[-1].cpu_ms:.3f} ms CPU a call")
                else:
                    measure_round(target, args.users, settings, f"round {number + 1} {target.label}", log)
    print(table(targets, args.baseline))


def table(targets: list[Target], baseline: str) -> str:
    lines = [
        "| load | rps | p50 ms | p99 ms | worst ms | CPU ms a request | rounds ± | rps ÷ baseline"
        " | p99 ÷ baseline | CPU ÷ baseline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms")
    for before, after in zip(targets[::2], targets[1::2], strict=True):
        b, a = ({key: median([getattr(run, key) for run in target.runs]) for key in keys} for target in (before, after))
        for target, m in ((before, b), (after, a)):
            ratio = [m[key] / b[key] if target is after else 1.0 for key in ("rps", "p99_ms", "cpu_ms")]
            worst = max(run.max_ms for run in target.runs)
            lines.append(
                f"| {target.label} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.1f} | {worst:,.0f} "
                f"| {m['cpu_ms']:.3f} | {spread(target)} | {ratio[0]:.2f} | {ratio[1]:.2f} | {ratio[2]:.2f} |"
            )
    return "\n".join([*lines, "", *disagreeing(targets)])


if __name__ == "__main__":
    main(sys.argv[1:])
