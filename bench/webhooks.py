"""The event log's costs: webhook delivery, and what writing the events costs the PATCH.

Delivery: events a second sent to a receiver on 127.0.0.1 that answers 204 at once. Each round a rollout of
a bench segment writes its events, the sequencer numbers them, and a child process times
`webhook_deliver_next` (what the worker's delivery job loops on) until the new webhook has them all.

The PATCH: the same code and data with the events app's trigger on history enabled (each history row the
membership journal writes becomes its event, events/migrations/sql/0006_event_journal.sql) and with it
disabled (`ALTER TABLE segments_historyevent DISABLE TRIGGER events_from_history` before the side's runs,
enabled again after), interleaved, while a worker numbers the events as in production. The history rows
are written either way (segments' journal triggers): the difference is what the events cost the PATCH.
"""

import json
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

from bench.bulk import _execute, segments_create, task
from bench.dataset import _env
from bench.journal import EVENTS_TRIGGERS, triggers_sql, unjournaled
from bench.load import LoadSettings, Target, measure_round
from bench.servers import ServerConfig, code_dir
from bench.sql import pgbench_patch_script
from bench.tools import Load, cpu_seconds, cpu_spent

SLUG = "bench_webhook"
CALL_CPU = "the PATCH's call, one connection: its server process's CPU"


class Receiver:
    """Counts the events of every POST and answers 204 at once."""

    def __init__(self) -> None:
        self.events = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.events += len(json.loads(body).get("events", []))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def delivery(dsn: str, rounds: int, percent: int, log) -> dict[str, list[float]]:
    """Per round: events delivered, seconds, messages, and the events the receiver counted."""
    segments_create(dsn, [SLUG])
    receiver = Receiver()
    times = {"events": [], "seconds": [], "messages": [], "received": []}
    try:
        for number in range(rounds):
            # Back to no member and 0%, unjournaled: the reset is no part of the delivery.
            unjournaled(
                dsn,
                "DELETE FROM segments_membership WHERE segment_id = (SELECT id FROM segments_segment WHERE slug = %s)",
                [SLUG],
            )
            unjournaled(dsn, "UPDATE segments_segment SET rollout_percent = 0 WHERE slug = %s", [SLUG])
            before = receiver.events
            result = task(dsn, "deliver", receiver.url, SLUG, str(percent))
            for key in ("events", "seconds", "messages"):
                times[key].append(result[key])
            times["received"].append(receiver.events - before)
            log(
                f"webhook round {number + 1}: {result['events']} events in {result['messages']} messages,"
                f" {result['seconds']:.2f} s, {result['events'] / result['seconds']:,.0f} events/s"
            )
    finally:
        receiver.server.shutdown()
    return times


def events_trigger(enable: bool) -> str:
    """The statement that enables or disables the events of history rows (the PATCH's only event writes)."""
    [statement] = triggers_sql(enable, EVENTS_TRIGGERS)
    return statement


def call_cpu(dsn: str, users: int, settings: LoadSettings) -> Load:
    """The PATCH's call of pgbench, one at a time on one connection for `settings.seconds`: calls a second and
    the CPU ms of its server process a call."""
    script = pgbench_patch_script(users, settings.patch_segments, settings.actor)
    call = script.splitlines()[-1].replace(":uid", "%(uid)s").replace(":a", "%(a)s").replace(":r", "%(r)s")
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
            before, started, calls = cpu_seconds([pid]), time.monotonic(), 0
            while time.monotonic() - started < settings.seconds:
                segment = random.randint(1, settings.patch_segments)
                other = random.randint(1, settings.patch_segments - 1)
                cursor.execute(call, {"uid": random.randint(1, users), "a": segment, "r": other})
                calls += 1
            seconds = time.monotonic() - started
            spent = cpu_spent(before, cpu_seconds([pid]))
    finally:
        connection.close()
    nan = float("nan")
    return Load(rps=calls / seconds, p50_ms=seconds * 1000 / calls, p99_ms=nan, errors=0, requests=calls,
                cpu_ms=spent * 1000 / calls if spent else nan)  # fmt: skip


def patch_cost(dsn: str, config: ServerConfig, users: int, settings: LoadSettings, log) -> dict[str, list[Target]]:
    """The served PATCH (production settings), its SQL (pgbench) and the CPU of one call, with the events and
    without them (the keys); the sides alternate, each round in the other order."""
    switch = {"with": events_trigger(enable=True), "without": events_trigger(enable=False)}
    targets = {
        side: [
            Target(
                f"PATCH /api/v1/users/{{id}}/segments/ ({config.name}, production)",
                config,
                script="patch.lua",
                dsn=dsn,
                settings="production",
            ),
            Target("pgbench -M prepared: the PATCH's call", None, script="patch.lua", dsn=dsn),
            Target(CALL_CPU, None, script="patch.lua", dsn=dsn),
        ]
        for side in switch
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker"], cwd=code_dir(), env=_env(dsn),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_sequenced(dsn)
        for number in range(settings.rounds):
            sides = ("with", "without") if number % 2 == 0 else ("without", "with")
            for side in sides:
                _execute(dsn, switch[side])
                for target in targets[side][:2]:
                    measure_round(target, users, settings, f"round {number + 1} {target.label}, {side} events", log)
                one = targets[side][2]
                one.runs.append(call_cpu(dsn, users, settings))
                log(f"round {number + 1} {CALL_CPU}, {side} events: {one.runs[-1].cpu_ms:.3f} ms")
    finally:
        _execute(dsn, switch["with"])
        worker.terminate()
        worker.wait(timeout=30)
    return targets


def _wait_sequenced(dsn: str, timeout: float = 300) -> None:
    """Until the worker has numbered every event written before (the rollout and delivery rounds write many)."""
    deadline = time.monotonic() + timeout
    while _execute(dsn, "SELECT EXISTS (SELECT 1 FROM events_event WHERE position IS NULL)")[0][0]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not number the events within {timeout} s")
        time.sleep(1)
