"""The format of every log line: one JSON object, the same for Django's LOGGING (settings.py) and for
gunicorn's and uvicorn's own lines (gunicorn.conf.py, which reads it before Django is set up)."""

from pythonjsonlogger.core import RESERVED_ATTRS

JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "format": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": "time",
    # uvicorn repeats some messages with terminal colour codes as `color_message`: not for a log
    "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
}
