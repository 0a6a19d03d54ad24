"""Service-side timings, run in a child process against the bench database: `python -m bench.django_tasks TASK ...`.

Prints one JSON object. Tasks: `queries USER_ID TOKEN` (queries per hot-path GET once warm),
`rollout SLUG PERCENT` (segments.services.rollout_apply), `expire` (segments.services.memberships_expire),
`report YYYY-MM` (a month's CSV report file, reports.services.report_copy, as POST /api/v1/reports/ writes it),
`deliver URL SLUG PERCENT` (a rollout's events to a new webhook at URL, events.services.delivery, bench/webhooks.py).
"""

import json
import os
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


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
