"""Per-client request rates (SEGMENTER_WRITE_RATE, and the apps' own: reports/throttles.py), counted in PostgreSQL.

Each check is one statement on the primary (core/sql/rate_hit.sql): an upsert of the client's count in
its current window, returning the new count. However requests are spread over server processes,
threads and connections, at most `limit` are accepted per window; no session state, so it works
behind a pooler in transaction mode. Windows that ended are deleted by the `purge_rates` job.

A request is counted once, whoever sees it first: the fast lane (segmenter/hot_path.py) counts the
writes it would answer through `request_rate_hit`, and a request it then leaves to Django carries its
count in the WSGI environ, which DRF's throttle reads instead of counting again.
"""

import math
from pathlib import Path

from django.conf import settings
from django.db import connection
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from core.auth import Client
from core.client_ip import client_ip
from core.rates import rate_parse

RATE_HIT = (Path(__file__).parent / "sql" / "rate_hit.sql").read_text()
MAX_IDENT = 100  # characters of a client address in a key (a proxy's X-Forwarded-For entry may be longer)
COUNTED = "segmenter.rates_counted"  # the environ's {scope: rate_hit's answer} of this request


def rate_hit(*, key: str, rate: str) -> float | None:
    """Count one request of `key` against `rate` (`30/min`); None when accepted, else seconds until the window ends."""
    limit, window = rate_parse(rate)
    with connection.cursor() as cursor:
        cursor.execute(RATE_HIT, {"key": key, "window": window, "limit": limit})
        count, seconds_left = cursor.fetchone()
    return None if count <= limit else max(seconds_left, 0.0)


def rate_counts_purge() -> int:
    """Delete the counts of windows that ended; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segmenter_ratecount WHERE window_end <= statement_timestamp()")
        return cursor.rowcount


def request_rate_hit(*, scope: str, rate: str, client, request) -> float | None:
    """`rate_hit` for this request, counted the first time it is asked (per scope): per API token, per client
    address when token checks are off. `request` is Django's (or one with the WSGI environ as META)."""
    counted = request.META.setdefault(COUNTED, {})
    if scope not in counted:
        token_id = client.token_id if isinstance(client, Client) else None
        ident = f"token-{token_id}" if token_id is not None else f"ip-{client_ip(request)[:MAX_IDENT]}"
        counted[scope] = rate_hit(key=f"{scope}:{ident}", rate=rate)
    return counted[scope]


class TokenRateThrottle(BaseThrottle):
    """Counts requests per API token (per client address when token checks are off)."""

    scope = ""
    setting = ""

    def allow_request(self, request, view) -> bool:
        rate = getattr(settings, self.setting)
        if rate is None:
            return True
        self.seconds_left = request_rate_hit(scope=self.scope, rate=rate, client=request.user, request=request)
        return self.seconds_left is None

    def wait(self) -> int:
        """Retry-After: whole seconds until the window ends, at least 1."""
        return max(1, math.ceil(self.seconds_left))


class WriteThrottle(TokenRateThrottle):
    """Writes, only when SEGMENTER_WRITE_RATE is set; reads are never counted here (the fast lane counts the
    PATCH it answers with the same scope)."""

    scope = WRITES = "writes"
    setting = "SEGMENTER_WRITE_RATE"

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS or request.method in getattr(view, "read_only_safe_methods", ()):
            return True
        return super().allow_request(request, view)
