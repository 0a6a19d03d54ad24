"""The results of one run as docs/performance.md: the machine, the command, tables and the targets."""

import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata

import psycopg2

from bench.dataset import admin_dsn
from bench.load import Target
from bench.servers import ServerConfig
from bench.stats import fmt, median, ratio, table

SYNC_BASELINE = "gunicorn sync ×4"  # gunicorn's default worker class with 4 workers
GO_VS_BARE_SYNC = 1.8  # the Go + MySQL implementation, against the bare app under gunicorn sync ×4


@dataclass
class Results:
    args: object
    sizes: object
    command: str
    queries: dict = field(default_factory=dict)
    servers: list[Target] = field(default_factory=list)
    endpoints: list[Target] = field(default_factory=list)
    history: dict = field(default_factory=dict)
    metrics: list[Target] = field(default_factory=list)
    batch: list[Target] = field(default_factory=list)
    latency: list[Target] = field(default_factory=list)
    rollout: dict = field(default_factory=dict)
    expiry: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    webhooks: dict = field(default_factory=dict)
    imports: dict = field(default_factory=dict)
    events: dict[str, list[Target]] = field(default_factory=dict)  # "with" and "without" the event log
    minutes: float = 0.0

    def find(self, label: str) -> Target | None:
        return next((t for t in self.servers if t.label == label), None)

    def best_gunicorn(self) -> ServerConfig | None:
        candidates = [t for t in self.servers if t.config and t.config.server == "gunicorn" and t.app == "service"]
        if not candidates:
            return None
        return max(candidates, key=lambda t: _nan_low(median(rps(t)))).config


def _nan_low(value: float) -> float:
    return -1.0 if math.isnan(value) else value


def rps(target: Target) -> list[float]:
    return [run.rps for run in target.runs]


SUMMARY = ["rps", "p50 ms", "p99 ms", "worst ms", "errors", "rounds ±"]
AGREE = 0.10  # rounds agree when each round's rps is within 10 % of the median


def summary(target: Target) -> list:
    """The SUMMARY columns: medians over the rounds, the worst request of all, and the rounds' spread."""
    runs = target.runs
    return [
        median(rps(target)),
        median([r.p50_ms for r in runs]),
        median([r.p99_ms for r in runs]),
        max((r.max_ms for r in runs), default=float("nan")),
        sum(max(r.errors, 0) for r in runs),
        spread(target),
    ]


def spread(target: Target) -> str:
    """How far the rounds' rps stray from their median, e.g. `4 %`; marked `(disagree)` past AGREE."""
    middle = median(rps(target))
    if not target.runs or not middle or math.isnan(middle):
        return "–"
    worst = max(abs(value - middle) / middle for value in rps(target))
    return f"{worst:.0%}" + (" (disagree)" if worst > AGREE else "")


def disagreeing(targets: list[Target]) -> list[str]:
    """A sentence naming the rows whose rounds disagree, if any (their figures are then only indicative)."""
    bad = [t.label for t in targets if t.runs and "disagree" in spread(t)]
    if not bad:
        return [f"Every row's rounds agree (within {AGREE:.0%} of its median rps)."]
    return [f"Rounds disagree (over {AGREE:.0%} from the median rps) for: {'; '.join(bad)}: read those as indicative."]


def machine(dsn_hint: str) -> str:
    memory = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    with psycopg2.connect(dsn_hint) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    connection.close()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("[")[0].strip()
    packages = ("Django", "djangorestframework", "gunicorn", "uvicorn", "a2wsgi", "granian", "psycopg2-binary")
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {int(memory) // 1024 // 1024} GiB RAM, PostgreSQL {postgres} on the same"
        f" machine (shared, default settings), Python {platform.python_version()}, {versions}, {wrk}, "
        f"{platform.system()} {platform.release()}"
    )


GET_SQL = "pgbench -M prepared: the GET's SQL"
PATCH_SQL = "pgbench -M prepared: the PATCH's call"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def servers_section(results: Results) -> list[str]:
    pgbench = results.find("pgbench -M prepared")
    bare_sync = results.find(f"{SYNC_BASELINE} bare")
    rows = [["pgbench -M prepared (same SQL)", "–", *summary(pgbench), "–", 1.0, "–"]] if pgbench else []
    for target in results.servers:
        if target.config is None or target.app != "service":
            continue
        bare = results.find(f"{target.config.name} bare")
        go = [GO_VS_BARE_SYNC * value for value in rps(bare_sync)] if bare_sync else []
        for t in (target, bare) if bare else (target,):
            rows.append([
                target.config.name, t.app, *summary(t),
                ratio(rps(target), rps(bare)) if t is target and bare else "–",
                ratio(rps(t), rps(pgbench)) if pgbench else "–",
                ratio(rps(t), go) if go else "–",
            ])  # fmt: skip
    return [
        "## GET /api/v1/users/{id}/segments/ by server and config",
        "",
        "`service` is the Django app; `bare` is bench/bare_app.py (no framework, psycopg2, same SQL) under the"
        " same server and config; pgbench runs the same SQL with `-M prepared`. `÷ Go` compares with the Go +"
        f" MySQL implementation, estimated at {GO_VS_BARE_SYNC}× the bare app under gunicorn sync ×4 in the same"
        " round (the figure it was measured at on this kind of machine); above 1 would overtake it.",
        "",
        table(
            [
                "server, workers×threads",
                "app",
                *SUMMARY,
                "service ÷ bare",
                "÷ pgbench",
                "÷ Go",
            ],
            rows,
        ),  # fmt: skip
        "",
    ]


def endpoints_section(results: Results) -> list[str]:
    service = [t for t in results.endpoints if t.config is not None]
    references = {t.script: t for t in results.endpoints if t.config is None}
    get = {"service": service[0], "pgbench": references.get("get.lua")}
    rows = []
    for t in results.endpoints:
        same_sql = references.get("patch.lua" if t.script == "patch.lua" else "get.lua")
        base = get["service" if t.config is not None else "pgbench"]
        rows.append([
            t.label, *summary(t),
            ratio(rps(t), rps(base)) if base else "–",
            ratio(rps(t), rps(same_sql)) if same_sql and t.config is not None else "–",
        ])  # fmt: skip
    patch = [run for t in service if t.script == "patch.lua" for run in t.runs]
    history = results.history
    return [
        "## Endpoints under gunicorn.conf.py's config",
        "",
        "The pgbench rows run each endpoint's SQL with `-M prepared` on the same data, interleaved: the GET's"
        " query, and the PATCH's one call of `segments_memberships_update` with the same add and remove (the"
        " physical limit of each). `÷ GET` compares with the v1 GET of the same kind (service or pgbench) under"
        " the default settings. Every request carries `X-Forwarded-Proto: https`, as from a TLS-terminating"
        " proxy; the rows marked production run with DJANGO_HSTS_SECONDS=31536000"
        " DJANGO_SECURE_SSL_REDIRECT=true DJANGO_SECURE_COOKIES=true (their answers carry HSTS); the rows marked"
        " metrics off run with SEGMENTER_METRICS=off, and logs off with DJANGO_LOG_LEVEL=WARNING (no line a request).",
        "",
        table(["endpoint", *SUMMARY, "÷ GET", "÷ pgbench of its SQL"], rows),
        "",
        *disagreeing(results.endpoints),
        "",
        f"PATCH history check: {history.get('events', 0):,} history rows written by the PATCH runs (the service's"
        " and pgbench's, with the same actor); the service's responses counted within the runs reported"
        f" {sum(r.added + r.removed for r in patch):,} changes (requests still in flight when wrk stops are not"
        " counted). Per (user, segment): repeated operations"
        f" {history.get('repeated')}, first event not matching the state before {history.get('bad_first')}, last"
        f" event not matching the state after {history.get('bad_last')}, changed without a row"
        f" {history.get('unlogged')} (all 0 = exactly one history row per real change).",
        "",
    ]


def metrics_section(results: Results) -> list[str]:
    counted, off = results.metrics
    rounds = [
        [number + 1, a.rps, b.rps, a.rps / b.rps if b.rps else float("nan"), a.cpu_ms * 1000, b.cpu_ms * 1000]
        for number, (a, b) in enumerate(zip(counted.runs, off.runs, strict=True))
    ]
    rate = ratio(rps(counted), rps(off))
    cpu = ratio(cpu_us(counted), cpu_us(off))
    return [
        "## What counting requests costs the fast lane",
        "",
        "The v1 GET (fast lane) as served, and with SEGMENTER_METRICS=off (no request counter or latency"
        " histogram, no query metrics), one right after the other in each round, the same server config and"
        " data; the request log line is written in both. CPU µs is the user and system CPU time of the"
        " server's processes and the database's backends per request during the run;"
        " `python -m bench.metrics_cost` measures the difference more finely, in one process.",
        "",
        table(["round", "rps as served", "rps metrics off", "rps ratio", "CPU µs as served", "CPU µs off"], rounds),
        "",
        f"Medians of per-round ratios: rate as served ÷ metrics off {fmt(rate, 3)} (counting costs"
        f" {fmt(100 * (1 - rate), 1)}% of the rate); server CPU per request as served ÷ metrics off {fmt(cpu, 3)}"
        f" ({fmt(median(cpu_us(counted)), 0)} against {fmt(median(cpu_us(off)), 0)} µs, so at most"
        f" {fmt(100 * (1 - 1 / cpu), 1)}% of the rate of a server bound by its CPU). Medians"
        f" {fmt(median(rps(counted)))} and {fmt(median(rps(off)))} rps.",
        "",
    ]


def cpu_us(target: Target) -> list[float]:
    return [run.cpu_ms * 1000 for run in target.runs]


def users_per_second(target: Target) -> list[float]:
    return [run.rps * target.users_per_request for run in target.runs]


def batch_section(results: Results) -> list[str]:
    single, batch = results.batch
    rows = [
        [t.label, *summary(t), median(users_per_second(t)), 1e6 / median(users_per_second(t))] for t in results.batch
    ]
    return [
        "## Batch lookup against single GETs",
        "",
        "The same users' segments asked for one user a request (the hot GET, fast lane) and"
        f" {batch.users_per_request:,}"
        " distinct random users a request (`POST /api/v1/users/segments/`, one query, through Django), under"
        f" gunicorn.conf.py's config at {results.args.connections} connections, interleaved.",
        "",
        table(["request", *SUMMARY, "users/s", "µs per user"], rows),
        "",
        f"Seconds per user, single GETs ÷ batch: {fmt(ratio(users_per_second(batch), users_per_second(single)))}×.",
        "",
    ]


def latency_section(results: Results) -> list[str]:
    rows = [[t.label, *summary(t)] for t in results.latency]
    lines = ["## GET latency against dataset size", "", table(["dataset", *SUMMARY], rows)]
    for low, high in zip(results.latency[::2], results.latency[1::2], strict=True):
        p50 = ratio([r.p50_ms for r in high.runs], [r.p50_ms for r in low.runs])
        p99 = ratio([r.p99_ms for r in high.runs], [r.p99_ms for r in low.runs])
        lines.append(f"\n{high.label} ÷ {low.label}: p50 {fmt(p50)}×, p99 {fmt(p99)}×.")
    return [*lines, ""]


def bulk_section(results: Results) -> list[str]:
    rows = []
    kinds = (("rollout 10%", results.rollout), ("expiry sweep", results.expiry), ("CSV report", results.report))
    for name, data in kinds:
        if data:
            rows.append([
                name, median(data["service"]), median(data["sql"]), ratio(data["service"], data["sql"]),
                int(median(data["rows"])),
            ])  # fmt: skip
    lines = [
        "## Bulk work against its raw-SQL equivalent (psql), interleaved",
        "",
        "Rollout: `segments.services.rollout_apply` (the membership journal's triggers write the history rows and"
        " the events app's trigger their events) vs one `INSERT … SELECT … ON CONFLICT DO NOTHING` that writes its"
        " history rows and events in the same statement (data-modifying CTEs, bench/journal.py `raw`), run with"
        " those triggers disabled. Expiry: `memberships_expire` (batches of 10,000, with the triggers) vs one"
        " `DELETE … RETURNING` with its history rows and events, the triggers disabled. CSV report: `manage.py"
        " report --from M --output FILE` (a child process, startup included) vs `\\copy (SELECT …) TO FILE` of the"
        " same query.",
        "",
        table(["operation", "service s", "raw SQL s", "service ÷ SQL", "rows"], rows),
        "",
        *(
            f"{name}: service ÷ SQL by round "
            + " / ".join(fmt(a / b) for a, b in zip(data["service"], data["sql"], strict=True))
            + "."
            for name, data in kinds
            if data
        ),
        "",
    ]
    if results.report:
        report = results.report
        lines.append(
            f"Report peak RSS: {fmt(median(report['rss']), 0)} MiB for the month of"
            f" {fmt(median(report['rows']), 0)} events, {fmt(median(report['rss_small']), 0)} MiB for a month with a"
            f" tenth of them; psql's COPY: {fmt(median(report['copy_rss']), 0)} MiB.\n"
        )
    elif "report" not in results.args.skip:
        lines.append("The CSV report was not measured: `manage.py report` did not exist when this ran.\n")
    return lines


def webhooks_section(results: Results) -> list[str]:
    data = results.webhooks
    rates = [events / seconds for events, seconds in zip(data["received"], data["seconds"], strict=True)]
    rows = [[int(median(data["received"])), int(median(data["messages"])), median(data["seconds"]), median(rates)]]
    return [
        "## Webhook delivery to a receiver that answers at once",
        "",
        "A rollout's events, numbered, sent by `events.services.delivery.webhook_deliver_next` (what the worker's"
        " delivery job loops on: one message of up to 1,000 signed events in flight per webhook) to a receiver on"
        " 127.0.0.1 answering 204 at once; the events column is what the receiver counted.",
        "",
        table(["events", "messages", "seconds", "events/s"], rows),
        "",
    ]


def imports_section(results: Results) -> list[str]:
    data = results.imports
    service, sql, rows = data["service"], data["sql"], int(median(data["rows"]))
    runs = data["results"]
    per_round = " / ".join(fmt(a / b) for a, b in zip(service, sql, strict=True))

    def step(seconds: list[float]) -> list:
        return [median(seconds), median([part / run["seconds"] for part, run in zip(seconds, runs, strict=True)])]

    def statement(kind: str) -> list[float]:
        return [run["statements"][kind] for run in runs]

    stage = [run["stage_seconds"] for run in runs]
    chunks = [run["run_seconds"] - run["stage_seconds"] for run in runs]

    def parts(phase: str) -> list[list]:
        kinds = [kind for kind in runs[0]["statements"] if kind.startswith(phase)]
        return [["· " + kind.removeprefix(phase), *step(statement(kind))] for kind in kinds]

    def rest(phase: str, seconds: list[float]) -> list[float]:
        return [
            total - sum(value for kind, value in run["statements"].items() if kind.startswith(phase))
            for total, run in zip(seconds, runs, strict=True)
        ]

    steps = [
        ["storing the file (`import_create`)", *step([run["create_seconds"] for run in runs])],
        ["checking and staging the file", *step(stage)],
        ["· parsing every line in Python, COPY, commit", *step(rest("stage: ", stage))],
        *parts("stage: "),
        [f"applying the chunks of {runs[0]['chunk_lines']:,} lines", *step(chunks)],
        *parts("chunks: "),
        ["· commits (the foreign keys' deferred checks) and Python", *step(rest("chunks: ", chunks))],
    ]
    small = data["small"]
    return [
        "## An import of every user against COPY and one INSERT … SELECT (psql), interleaved",
        "",
        f"A file of every user id once ({rows:,} lines, shuffled) imported into an empty segment of a copy of a"
        f" {results.sizes.users:,}-user database (bench/imports.py; a fresh copy for each side of each round): the"
        " service's `import_create` then the worker's task in a child process, against psql's `\\copy` of the"
        " same file into a table and one statement: the import's `INSERT … SELECT … ON CONFLICT` over the table"
        " with its history rows and events written in the same statement, the journal's triggers disabled"
        " (bench/imports.py `import_sql`). Both wrote one membership, one history row and one event per line.",
        "",
        table(
            ["way", "seconds", "÷ psql", "rows"],
            [
                ["import (`import_create`, then the worker's task)", median(service), ratio(service, sql), rows],
                ["psql: `\\copy`, then the INSERT with history and events", median(sql), 1.0, rows],
            ],
        ),
        "",
        f"Import ÷ psql by round: {per_round}.",
        "",
        "Where the import's time went (the worker's statements timed by a wrapper; medians over the rounds):",
        "",
        table(["step", "seconds", "share of the import"], steps),
        "",
        f"The worker's peak RSS: {fmt(median([run['rss'] for run in runs]), 0)} MiB importing {rows:,} lines,"
        f" {fmt(median([run['rss'] for run in small]), 0)} MiB importing {int(median([r['added'] for r in small])):,}"
        f" (ratio {fmt(ratio([r['rss'] for r in runs], [r['rss'] for r in small]))}); the same process held"
        f" {fmt(median([run['rss_before'] for run in runs]), 0)} MiB once Django was loaded, before the import.",
        "",
    ]


def events_section(results: Results) -> list[str]:
    rates, cpu = [], []
    for with_events, without in zip(results.events["with"], results.events["without"], strict=True):
        yes, no = rps(with_events), rps(without)
        rates.append([with_events.label, ", ".join(map(fmt, yes)), median(yes), ", ".join(map(fmt, no)), median(no)])
        rates[-1].append(ratio(yes, no))
        yes, no = [run.cpu_ms for run in with_events.runs], [run.cpu_ms for run in without.runs]
        if not math.isnan(median(yes)):
            cpu.append([with_events.label, median(yes), median(no), ratio(no, yes)])
    return [
        "## The PATCH with the event log and without it",
        "",
        "The same code and data, with the events app's trigger on history (`events_from_history`, each history row"
        " the journal writes becomes its event) enabled and disabled (`ALTER TABLE segments_historyevent DISABLE"
        " TRIGGER events_from_history` before the side's runs, bench/webhooks.py `events_trigger`); the history"
        " rows are written either way. The sides alternate, each round in the other order, while `manage.py"
        " worker` numbers the events as in production.",
        "",
        table(
            ["endpoint", "with events: rps a round", "median", "without: rps a round", "median", "with ÷ without"],
            rates,
        ),
        "",
        "CPU a request, which other work on the machine disturbs far less than rates: the server's processes and"
        " the database's backends (the worker's included) during the served runs; the backend alone for the call"
        " made one at a time. `without ÷ with` is the rate with events, as a fraction of the rate without, where"
        " CPU is the limit.",
        "",
        table(["what", "with events: CPU ms", "without: CPU ms", "without ÷ with"], cpu),
        "",
    ]


START, END = "<!-- bench results: written by python -m bench -->", "<!-- end of bench results -->"


def splice(existing: str, generated: str) -> str:
    """Put the generated results between the markers of an existing file, keeping the notes around them."""
    block = f"{START}\n{generated}\n{END}"
    if START in existing and END in existing:
        before, _, rest = existing.partition(START)
        return before + block + rest.partition(END)[2]
    return block + "\n"


def render(results: Results) -> str:
    args, sizes = results.args, results.sizes
    lines = [
        "# Performance",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python -m bench` (what `make bench`"
        f" runs) in {results.minutes:.0f} min."
        f" Command: `{results.command}`.",
        "",
        f"Machine: {machine(admin_dsn(args.postgres, 'postgres'))}. The load generator, the servers and"
        " PostgreSQL share the machine, which other jobs also used: every figure is the median of"
        f" {args.rounds} interleaved rounds of {args.seconds} s at {args.connections} connections"
        f" (bulk work: {args.bulk_rounds} rounds; imports: {args.import_rounds}), and every ratio is the median of"
        " per-round ratios.",
        "",
    ]
    if results.queries:
        lines += [
            f"Dataset: {sizes.users:,} users, {sizes.segments:,} segments, {sizes.per_user} memberships per user,"
            f" {sizes.history:,} history events ({sizes.report_events:,} in the reported month). Queries per warm"
            f" GET (token check included): {results.queries.get('queries')}.",
            "",
        ]
    if results.servers:
        lines += servers_section(results)
    if results.endpoints:
        lines += endpoints_section(results)
    if results.metrics:
        lines += metrics_section(results)
    if results.batch:
        lines += batch_section(results)
    if results.latency:
        lines += latency_section(results)
    if results.rollout or results.expiry or results.report:
        lines += bulk_section(results)
    if results.webhooks:
        lines += webhooks_section(results)
    if results.imports:
        lines += imports_section(results)
    if results.events:
        lines += events_section(results)
    return "\n".join(lines)
