"""`python -m bench`: build the dataset, load the service and its references, time bulk work, write the results."""

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from bench import bulk, checks, dataset, imports, markdown, webhooks
from bench.load import BATCH_USERS, LoadSettings, Target, interleave
from bench.servers import ROOT, SERVED, ServerConfig, granian_ensure, snapshot
from bench.stats import median
from bench.tools import require_tools

# What gunicorn.conf.py runs on 2 CPUs: the endpoints and the latency table are measured under it.
DEFAULT = ServerConfig("gunicorn uvicorn 3×4", "gunicorn", workers=3, threads=4, worker_class=SERVED)
# What it ran before (slow clients held its threads): the endpoints table measures GET and PATCH under it too.
GTHREAD = ServerConfig("gunicorn gthread 3×4", "gunicorn", workers=3, threads=4)
GUNICORN_CONFIGS = [
    ServerConfig("gunicorn sync ×4", "gunicorn", workers=4, worker_class="sync"),
    ServerConfig("gunicorn gthread 5×2", "gunicorn", workers=5, threads=2),
    GTHREAD,
    ServerConfig("gunicorn gthread 2×8", "gunicorn", workers=2, threads=8),
    DEFAULT,
]
PRODUCTION = "production HTTPS settings"
# The parts measured on the main dataset (`--db`); the imports build a database of their own.
MAIN_DATASET_PARTS = {"servers", "endpoints", "metrics", "batch", "latency", "bulk", "report", "webhooks", "events"}
GRANIAN = ServerConfig("granian 2×4", "granian", workers=2, threads=4)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--small", action="store_true", help="a few minutes: 100k users, short runs, 2 rounds")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=5, help="memberships per user")
    parser.add_argument("--history", type=int, default=10_000_000)
    parser.add_argument("--report-events", type=int, default=1_000_000, help="events in the reported month")
    parser.add_argument("--expire", type=int, default=1_000_000, help="due memberships for the expiry sweep")
    parser.add_argument("--latency-users", type=int, nargs=2, default=[10_000, 10_000_000], metavar=("LOW", "HIGH"))
    parser.add_argument("--seconds", type=int, default=10, help="seconds per load run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load before each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bulk-rounds", type=int, default=2)
    parser.add_argument("--import-rounds", type=int, default=3, help="rounds of the import of every user")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument("--db", default="segmenter_bench", help="database to (re)create; more get suffixes")
    parser.add_argument("--reuse", action="store_true", help="keep a database that already has these sizes")
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument(
        "--skip",
        default="",
        help="comma list of: servers, endpoints, metrics, batch, latency, bulk, report, webhooks, events, imports",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args(argv)
    if args.small:
        args.users, args.segments, args.history, args.report_events = 100_000, 100, 1_000_000, 100_000
        args.expire, args.latency_users = 100_000, [10_000, 100_000]
        args.seconds, args.rounds, args.bulk_rounds, args.warmup = 4, 2, 1, 1
    args.skip = set(filter(None, args.skip.split(",")))
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    require_tools()
    with tempfile.TemporaryDirectory(prefix="segmenter-bench-") as directory:
        log(f"measuring a snapshot of the code in {snapshot(Path(directory))}")
        run(args)


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    sizes = dataset.Sizes(args.users, args.segments, args.per_user, args.history, args.report_events)
    results = markdown.Results(args=args, sizes=sizes, command=shlex.join(["python", "-m", "bench", *sys.argv[1:]]))
    if MAIN_DATASET_PARTS - args.skip:
        dsn = dataset.build(server=args.postgres, db=args.db, sizes=sizes, reuse=args.reuse, log=log)
        name, token = dataset.token(dsn, "bench")
        settings = LoadSettings(args.seconds, args.warmup, args.rounds, args.port, token, actor=name)
        results.queries = bulk.task(dsn, "queries", "1", token)
        log(f"queries per warm GET: {results.queries}")
        users_of = {dsn: args.users}

    if "servers" not in args.skip:
        configs = GUNICORN_CONFIGS + ([GRANIAN] if granian_ensure() else [])
        targets = [Target("pgbench -M prepared", None, dsn=dsn, connections=args.connections)]
        for config in configs:
            for app in ("service",) if config.worker_class == SERVED else ("service", "bare"):
                targets.append(Target(f"{config.name} {app}", config, app=app, dsn=dsn, connections=args.connections))
        interleave(targets, lambda t: users_of[t.dsn], settings, log)
        results.servers = targets
    best = results.best_gunicorn()
    if best:
        log(f"best gunicorn config by rps: {best.name}; the endpoints and latency run under {DEFAULT.name}")

    if "endpoints" not in args.skip:
        slugs = checks.patch_slugs(settings.patch_segments)
        checks.snapshot(dsn, slugs)
        targets = [
            Target(f"GET /api/v1/users/{{id}}/segments/ ({DEFAULT.name})", DEFAULT, script="get.lua", dsn=dsn),
            Target(f"GET /api/get_user_segments?user_id=N ({DEFAULT.name})", DEFAULT, script="seed.lua", dsn=dsn),
            Target(
                f"GET /api/get_user_segments + JSON body ({DEFAULT.name})", DEFAULT, script="seed_body.lua", dsn=dsn
            ),
            Target(f"GET /api/v1/users/{{id}}/segments/ ({GTHREAD.name})", GTHREAD, script="get.lua", dsn=dsn),
            Target(f"GET, bare WSGI app, same SQL ({GTHREAD.name})", GTHREAD, app="bare", dsn=dsn),
            Target(f"PATCH /api/v1/users/{{id}}/segments/ ({GTHREAD.name})", GTHREAD, script="patch.lua", dsn=dsn),
            Target(f"PATCH /api/v1/users/{{id}}/segments/ ({DEFAULT.name})", DEFAULT, script="patch.lua", dsn=dsn),
            *(
                Target(f"GET /api/v1/users/{{id}}/segments/ ({DEFAULT.name}, {off})", DEFAULT, dsn=dsn, settings=off)
                for off in ("metrics off", "metrics and logs off")
            ),
            Target(
                f"GET /api/v1/users/{{id}}/segments/ ({DEFAULT.name}, {PRODUCTION})",
                DEFAULT,
                dsn=dsn,
                settings="production",
            ),
            Target(
                f"PATCH /api/v1/users/{{id}}/segments/ ({DEFAULT.name}, {PRODUCTION})",
                DEFAULT,
                script="patch.lua",
                dsn=dsn,
                settings="production",
            ),
            Target(markdown.GET_SQL, None, dsn=dsn),
            Target(markdown.PATCH_SQL, None, script="patch.lua", dsn=dsn),
        ]
        for target in targets:
            target.connections = args.connections
        interleave(targets, lambda t: users_of[t.dsn], settings, log)
        results.endpoints = targets
        results.history = checks.history_check(dsn, name, slugs)
        log(f"history check: {results.history}")

    if "metrics" not in args.skip:
        label = f"GET /api/v1/users/{{id}}/segments/ ({DEFAULT.name}"
        results.metrics = [
            Target(f"{label})", DEFAULT, dsn=dsn),
            Target(f"{label}, metrics off)", DEFAULT, dsn=dsn, settings="metrics off"),
        ]
        for target in results.metrics:
            target.connections = args.connections
        interleave(results.metrics, lambda t: users_of[t.dsn], settings, log)

    if "batch" not in args.skip:
        results.batch = [
            Target("GET /api/v1/users/{id}/segments/, 1 user a request", DEFAULT, dsn=dsn),
            Target(
                f"POST /api/v1/users/segments/, {BATCH_USERS:,} users a request", DEFAULT, script="batch.lua", dsn=dsn
            ),
        ]
        for target in results.batch:
            target.connections = args.connections
        interleave(results.batch, lambda t: users_of[t.dsn], settings, log)

    if "latency" not in args.skip:
        results.latency = latency(args, sizes, dsn, DEFAULT, settings, users_of)

    if "bulk" not in args.skip:
        results.rollout = bulk.rollout(dsn, args.bulk_rounds, log)
        results.expiry = bulk.expiry(dsn, args.expire, args.bulk_rounds, log)
    if "report" not in args.skip:
        if bulk.report_available():
            results.report = bulk.report(dsn, args.bulk_rounds, log)
        else:
            log("reports/management/commands/report.py is missing: the CSV report is not measured")
    if "webhooks" not in args.skip:
        results.webhooks = webhooks.delivery(dsn, args.bulk_rounds, 10, log)
    if "imports" not in args.skip:
        results.imports = imports.imports(args.postgres, args.db, sizes, args.import_rounds, log)
    if "events" not in args.skip:
        results.events = webhooks.patch_cost(dsn, DEFAULT, args.users, settings, log)
    results.minutes = (time.monotonic() - started) / 60
    existing = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(markdown.splice(existing, markdown.render(results)))
    log(
        f"wrote {args.output} after {results.minutes:.1f} min; GET service rps median "
        f"{median([r.rps for r in results.endpoints[0].runs]) if results.endpoints else float('nan'):,.0f}"
    )


def latency(args, sizes, dsn, config, settings, users_of) -> list[Target]:
    """The GET at LOW users vs HIGH users (the main dataset when HIGH is its size), at 1 and at 16 connections."""
    low, high = args.latency_users
    dsns = {}
    for users in (low, high):
        if users == sizes.users:
            dsns[users] = dsn
            continue
        other = dataset.Sizes(users, sizes.segments, sizes.per_user, 0, 0)
        dsns[users] = dataset.build(server=args.postgres, db=f"{args.db}_{users}", sizes=other, reuse=True, log=log)
        users_of[dsns[users]] = users
    targets = []
    for connections in (1, args.connections):
        for users in (low, high):
            label = f"{users:,} users, {connections} conn"
            token = dataset.token(dsns[users], "bench")[1]
            targets.append(Target(label, config, dsn=dsns[users], connections=connections, token=token))
    interleave(targets, lambda t: users_of[t.dsn], settings, log)
    return targets
