"""The rate settings' format (SEGMENTER_REPORT_RATE, SEGMENTER_WRITE_RATE), read by settings.py and the throttles.

`30/min`: 30 requests per minute; the unit may carry a count, `5/10s` is 5 per 10 seconds. Units: s, sec,
second, m, min, minute, h, hour, d, day. Plain Python: settings.py imports it before Django is set up.
"""

import re
from functools import cache
from typing import NamedTuple

RATE = re.compile(r"([0-9]+)/([1-9][0-9]*)?(s|sec|second|m|min|minute|h|hour|d|day)")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Rate(NamedTuple):
    limit: int  # requests accepted per window
    window: int  # seconds


@cache
def rate_parse(text: str) -> Rate:
    """The rate `text` stands for; ValueError when it does not look like `30/min`."""
    match = RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} does not look like 30/min or 5/10s (per s, min, hour or day)")
    limit, count, unit = match.groups()
    return Rate(limit=int(limit), window=int(count or 1) * UNIT_SECONDS[unit[0]])
