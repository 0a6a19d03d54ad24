"""Service-side timings, run in a child process against the bench database: `python -m bench.django_tasks TASK ...`.

Prints one JSON object. Tasks: `queries USER_ID TOKEN` (queries per hot-path GET once warm),
`rollout SLUG PERCENT` (segments.services.rollout_apply), `expire` (segments.services.memberships_expire),
`report YYYY-MM` (a month's CSV report file, reports.services.report_copy, as POST /api/v1/reports/ writes it),
`deliver URL SLUG PERCENT` (a rollout's events to a new webhook at URL, events.services.delivery, bench/webhooks.py),
`import SLUG FILE` (import_create of FILE, then the worker's task on it, bench/imports.py; with the process's peak RSS
and where the time went), `import_sql SEGMENT_ID TABLE` (the reference statement of bench/imports.py, as SQL text).
"""

import json
import os
import re
import sys
import tempfile
import time


def main(task: str, *args: str) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "segmenter.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from reports.export import HistoryQuery
    from reports.periods import Period, month_parse
    from reports.services import report_copy
    from segments.services import memberships_expire, rollout_apply

    if task == "queries":
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {args[1]}")
        path = f"/api/v1/users/{args[0]}/segments/"
        first = client.get(path)
        with CaptureQueriesContext(connection) as queries:
            second = client.get(path)
        return {"status": [first.status_code, second.status_code], "queries": len(queries)}
    started = time.perf_counter()
    if task == "rollout":
        result = rollout_apply(slug=args[0], percent=args[1], actor="bench")
        return {"seconds": time.perf_counter() - started, "rows": result.added + result.removed}
    if task == "expire":
        rows = memberships_expire()
        return {"seconds": time.perf_counter() - started, "rows": rows}
    if task == "report":
        month = month_parse(args[0])
        with tempfile.TemporaryFile() as out:
            rows = report_copy(out, query=HistoryQuery(period=Period(month, month)), detail=True)
        return {"seconds": time.perf_counter() - started, "rows": rows}
    if task == "deliver":
        return deliver(*args)
    if task == "import":
        return import_file(*args)
    raise SystemExit(f"unknown task {task}")


def deliver(url: str, slug: str, percent: str) -> dict:
    """Roll `slug` out to `percent`, number its events, then time sending them to a new webhook at `url`."""
    from django.conf import settings

    from events.models import Webhook
    from events.services.delivery import webhook_deliver_next
    from events.services.log import events_sequence
    from events.services.webhooks import webhook_create
    from segments.services import rollout_apply

    settings.SEGMENTER_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    events_sequence()  # events written before this round go before the webhook
    webhook = webhook_create(url=url, segments=[slug])
    events = rollout_apply(slug=slug, percent=percent, actor="bench").added
    events_sequence()
    started, messages = time.perf_counter(), 0
    while webhook_deliver_next(webhook.pk):
        messages += 1
    seconds = time.perf_counter() - started
    Webhook.objects.filter(pk=webhook.pk).delete()
    return {"seconds": seconds, "events": events, "messages": messages}


# The statements of an import by what they do, for where its time goes (the first pattern that matches).
IMPORT_STATEMENTS = {
    "stage: DISTINCT ON into the staging table": r"CREATE UNLOGGED TABLE",
    "stage: index and ANALYZE": r"CREATE INDEX|ANALYZE",
    "chunks: INSERT … ON CONFLICT (its triggers write history and events)": r"^\s*INSERT INTO segments_membership",
    "chunks: expiry sweep of the segment": r"^\s*DELETE FROM segments_membership WHERE ctid",
    "chunks: UPDATE of listed members": r"UPDATE segments_membership",
    "chunks: count of known users": r"SELECT count\(\*\), count\(u\.id\)",
}


def import_file(slug: str, path: str) -> dict:
    """import_create of the file (as a request stores it), then the worker's task on it, timed; the statements'
    seconds by IMPORT_STATEMENTS (the others by phase: checking and staging the file, or applying its chunks),
    and the process's peak RSS before and after, in MiB."""
    from django.conf import settings
    from django.db import connection

    from segments.services import import_create
    from segments.tasks import run_import

    rss_before = peak_rss()
    others = ["stage: other statements", "chunks: other statements (locks, progress)"]
    seconds = dict.fromkeys([*IMPORT_STATEMENTS, *others], 0.0)
    chunks_from = []  # when the first chunk locked its segment: the file was checked and staged before

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        if not chunks_from and "FOR NO KEY UPDATE" in sql:
            chunks_from.append(started)
        try:
            return execute(sql, params, many, context)
        finally:
            other = "chunks: other statements (locks, progress)" if chunks_from else "stage: other statements"
            kind = next((k for k, p in IMPORT_STATEMENTS.items() if re.search(p, sql)), other)
            seconds[kind] += time.perf_counter() - started

    started = time.perf_counter()
    with open(path, "rb") as body:
        created, _ = import_create(slug=slug, body=body, format="csv", mode="add", actor="bench")
    stored = time.perf_counter()
    with connection.execute_wrapper(timed):
        run_import(created.pk)
    ended = time.perf_counter()
    created.refresh_from_db()
    return {
        "seconds": ended - started,
        "create_seconds": stored - started,
        "run_seconds": ended - stored,
        "stage_seconds": (chunks_from[0] if chunks_from else ended) - stored,
        "chunk_lines": settings.SEGMENTER_IMPORT_CHUNK_LINES,
        "statements": seconds,
        "status": created.status,
        "added": created.added,
        "rss_before": rss_before,
        "rss": peak_rss(),
    }


def peak_rss() -> float:
    """This process's peak RSS in MiB (VmHWM: getrusage's ru_maxrss would start from the parent's at exec)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
