"""Webhook delivery: events a second sent to a receiver on 127.0.0.1 that answers 204 at once.

Each round a rollout of a bench segment writes its events, the sequencer numbers them, and a child process
times `webhook_deliver_next` (what the worker's delivery job loops on) until the new webhook has them all.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.bulk import _execute, task

SLUG = "bench_webhook"


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
    _execute(
        dsn,
        "INSERT INTO segments_segment (slug, description, rollout_percent, created_at, updated_at)"
        " VALUES (%s, 'bench', 0, now(), now()) ON CONFLICT (slug) DO NOTHING",
        [SLUG],
    )
    receiver = Receiver()
    times = {"events": [], "seconds": [], "messages": [], "received": []}
    try:
        for number in range(rounds):
            _execute(
                dsn,
                "DELETE FROM segments_membership WHERE segment_id = (SELECT id FROM segments_segment WHERE slug = %s)",
                [SLUG],
            )
            _execute(dsn, "UPDATE segments_segment SET rollout_percent = 0 WHERE slug = %s", [SLUG])
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
