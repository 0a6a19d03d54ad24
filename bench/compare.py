"""This tree against an earlier revision, side by side in one run: `python -m bench.compare REV`.

Both are served by the production server (gunicorn.conf.py's default worker, 3×4) from the same
database and loaded in the same interleaved rounds: the hot GET and the PATCH under the default and
the production HTTPS settings, and the PATCH with SEGMENTER_WRITE_RATE set (a rate never reached).
The earlier revision is `git archive`d into a temporary folder and served with this tree's venv, on
the schema of this tree's migrations (the hot path's tables are the same). Prints a Markdown table:
each row's medians and its ratio to the earlier revision's same row. Finds what a change costs the
hot path; the full picture stays `python -m bench`.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench import dataset
from bench.cli import DEFAULT
from bench.load import LoadSettings, Target, interleave
from bench.markdown import disagreeing, spread
from bench.servers import ROOT, snapshot
from bench.stats import median
from bench.tools import require_tools

ROWS = [  # (label, wrk script, settings)
    ("GET /api/v1/users/{id}/segments/", "get.lua", "default"),
    ("GET /api/v1/users/{id}/segments/, production HTTPS settings", "get.lua", "production"),
    ("GET /api/get_user_segments + JSON body, production HTTPS settings", "seed_body.lua", "production"),
    ("PATCH /api/v1/users/{id}/segments/", "patch.lua", "default"),
    ("PATCH /api/v1/users/{id}/segments/, production HTTPS settings", "patch.lua", "production"),
    ("PATCH /api/v1/users/{id}/segments/, SEGMENTER_WRITE_RATE set", "patch.lua", "write rate"),
]


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
        versions = {args.baseline: replace(DEFAULT, code=baseline), "this tree": DEFAULT}
        targets = [
            Target(f"{label} ({version})", config, script=script, dsn=dsn, settings=env, connections=args.connections)
            for label, script, env in ROWS
            for version, config in versions.items()
        ]
        interleave(targets, lambda target: args.users, settings, log)
    print(table(targets, args.baseline))


def table(targets: list[Target], baseline: str) -> str:
    lines = [
        "| load | rps | p50 ms | p99 ms | worst ms | rounds ± | rps ÷ baseline | p99 ÷ baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for before, after in zip(targets[::2], targets[1::2], strict=True):
        b, a = (
            {key: median([getattr(run, key) for run in target.runs]) for key in ("rps", "p50_ms", "p99_ms")}
            for target in (before, after)
        )
        for target, m in ((before, b), (after, a)):
            ratio = (m["rps"] / b["rps"], m["p99_ms"] / b["p99_ms"]) if target is after else (1.0, 1.0)
            worst = max(run.max_ms for run in target.runs)
            lines.append(
                f"| {target.label} | {m['rps']:,.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {worst:,.0f} "
                f"| {spread(target)} | {ratio[0]:.2f} | {ratio[1]:.2f} |"
            )
    return "\n".join([*lines, "", *disagreeing(targets)])


if __name__ == "__main__":
    main(sys.argv[1:])
