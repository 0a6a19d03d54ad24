"""Reads from a streaming replica while it is fresh enough, else from the primary (DATABASE_REPLICA_URL).

Only reads that tolerate data up to SEGMENTER_REPLICA_MAX_LAG seconds old go through `read()`: the
hot GETs, the batch lookup, history listings and reports. Writes, locks and background work use the
primary ("default") and never come here.

Freshness is measured at most every CHECK_SECONDS per process, by one thread while the others go
on: the primary's current WAL position, then whether the replica has replayed up to it. A replica
that had replayed everything the primary had at instant t0 is at most `now - t0` old; one that had
not is at most `now - pg_last_xact_replay_timestamp()` old. The replica is used only while that
measured lag plus the age of the measurement is within the bound, so a replica that stops replaying
right after a check is left within the bound, not CHECK_SECONDS later. A replica that fails a query
is marked down and the read runs again on the primary: no request fails because of the replica.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)

PRIMARY, REPLICA = "default", "replica"
CHECK_SECONDS = 0.2  # how often a process measures the replica's lag
DOWN_RETRY_SECONDS = 1.0  # how long a replica that failed is left alone
T = TypeVar("T")


@dataclass(frozen=True)
class _State:
    lag: float | None  # seconds behind the primary when measured; None: down
    at: float  # time.monotonic() of the measurement


_state = _State(lag=None, at=float("-inf"))
_measuring = threading.Lock()


def configured() -> bool:
    return REPLICA in settings.DATABASES


def status() -> str | None:
    """The replica for /api/health/: "ok", "lagging" or "down"; None when none is configured."""
    if not configured():
        return None
    state = _current()
    if state.lag is None:
        return "down"
    return "ok" if _usable(state) else "lagging"


def read(query: Callable[[str], T], *, after_write: bool = False) -> T:
    """`query(alias)` on the replica when it is fresh enough, else (or when it fails there) on the primary.

    `after_write`: the request has just written what the query reads; it reads the primary.
    """
    if after_write or not configured() or not _usable(_current()):
        return query(PRIMARY)
    try:
        return query(REPLICA)
    except DatabaseError as exc:
        _mark_down(exc)
        return query(PRIMARY)


def _usable(state: _State) -> bool:
    return state.lag is not None and state.lag + (time.monotonic() - state.at) <= settings.SEGMENTER_REPLICA_MAX_LAG


def _current() -> _State:
    state = _state
    wait = DOWN_RETRY_SECONDS if state.lag is None else CHECK_SECONDS
    if time.monotonic() - state.at >= wait and _measuring.acquire(blocking=False):
        try:
            state = _measure()
        finally:
            _measuring.release()
    return state


def _measure() -> _State:
    global _state
    started = time.monotonic()
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            position = cursor.fetchone()[0]
    except DatabaseError:  # the primary's own failure: reads go to it and fail there, as without a replica
        _state = _State(lag=float("inf"), at=time.monotonic())
        return _state
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn,"
                " extract(epoch FROM now() - pg_last_xact_replay_timestamp())",
                [position],
            )
            in_recovery, caught_up, since_replay = cursor.fetchone()
    except DatabaseError as exc:
        _mark_down(exc)
        return _state
    if not in_recovery:
        lag = 0.0  # promoted: it is a primary now
    elif caught_up:
        lag = time.monotonic() - started
    else:
        lag = float("inf") if since_replay is None else max(float(since_replay), 0.0)
    _state = _State(lag=lag, at=time.monotonic())
    return _state


def _mark_down(exc: Exception) -> None:
    global _state
    if _state.lag is not None:
        logger.warning("replica down, reading from the primary: %s", exc)
    _state = _State(lag=None, at=time.monotonic())
    try:
        connections[REPLICA].close()
    except DatabaseError:
        pass
