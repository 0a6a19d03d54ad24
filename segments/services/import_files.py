"""Import files: a request body received into storage as lines, and read back line by line.

Whatever its form, a body is stored as one user id per line (CSV as sent; JSON's `user_ids`
one item a line, so that line N is item N), streamed through a temporary file: never held in
memory. Lines are checked later, by the worker (services/imports.py), with one parser.
"""

import hashlib
import json
import logging
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import ijson
from django.core.files import File
from django.core.files.storage import default_storage

from core.errors import BodyTooLarge, MalformedJson, ServiceUnavailable, ValidationFailed

logger = logging.getLogger(__name__)

IMPORTS_DIR = "imports"
MAX_LINES = 10_000_000
MAX_LINE_BYTES = 1_000  # a longer line is read as far as this and reported as too long
READ_BYTES = 1 << 20
# The stored file is read back in small blocks: a block's lines are held at once (about 8 MiB of
# objects for a 1 MiB block of ids), so the worker's memory stays flat whatever the file's size.
LINES_READ_BYTES = 64 << 10
FORMATS = {"text/csv": "csv", "application/json": "json"}
# ijson's C parser crashes the process, rather than raising, on an integer of more digits than Python
# converts (4,300 by default): a JSON body with a longer run of digits is refused before it is parsed.
MAX_DIGITS = 1_000
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))  # digits to "0", the rest to " "
_TOO_MANY_DIGITS = b"0" * (MAX_DIGITS + 1)


@dataclass(frozen=True)
class ReceivedFile:
    name: str  # in storage
    sha256: str  # of the body as sent
    lines: int


def import_file_receive(body: BinaryIO, *, format: str) -> ReceivedFile:
    """Store `body` (`csv` or `json`) under imports/ as lines; refuse more than MAX_LINES lines (413)
    and, for JSON, anything but `{"user_ids": [...]}` (400)."""
    reader = _HashingReader(body)
    try:
        with tempfile.TemporaryFile() as spool:
            lines = _csv_copy(reader, spool) if format == "csv" else _json_lines(reader, spool)
            spool.seek(0)
            path = f"{IMPORTS_DIR}/{secrets.token_urlsafe(24)}.txt"
            name = default_storage.save(path, File(spool, name="import.txt"))
    except OSError as exc:  # disk full, read-only or missing folder: the client may retry, the operator must act
        logger.error("import file not stored: %s", exc)
        raise ServiceUnavailable(f"The import file could not be stored ({exc.strerror or exc}); retry later.") from None
    return ReceivedFile(name=name, sha256=reader.sha256.hexdigest(), lines=lines)


def import_file_lines(name: str) -> Iterator[bytes]:
    """The stored file's lines without their line ends, line 1 first; a line longer than
    MAX_LINE_BYTES is cut there (the parser refuses it). Memory stays within a block and a line."""
    with default_storage.open(name, "rb") as file:
        carry = b""
        while block := file.read(LINES_READ_BYTES):
            pieces = (carry + block).split(b"\n")
            carry = pieces.pop()
            if len(carry) > MAX_LINE_BYTES:
                carry = carry[: MAX_LINE_BYTES + 1]
            for piece in pieces:
                yield piece[: MAX_LINE_BYTES + 1].rstrip(b"\r")
        if carry:
            yield carry.rstrip(b"\r")


def import_file_delete(name: str) -> None:
    if name:
        default_storage.delete(name)


class _HashingReader:
    """The body as read, hashed on the way."""

    def __init__(self, body: BinaryIO) -> None:
        self.body = body
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.body.read(size)
        self.sha256.update(data)
        return data


class _DigitRuns:
    """The body as read, refused (400) at a run of more than MAX_DIGITS digits, even across reads."""

    def __init__(self, body) -> None:
        self.body = body
        self.tail = b""  # the digits that end what was read so far, as "0"s, up to MAX_DIGITS

    def read(self, size: int = -1) -> bytes:
        data = self.body.read(size)
        digits = self.tail + data.translate(_DIGITS_ONLY)
        if _TOO_MANY_DIGITS in digits:
            raise ValidationFailed({"user_ids": [f"More than {MAX_DIGITS} digits in a row: a user id has at most 19."]})
        self.tail = digits[len(digits.rstrip(b"0")) :]
        return data


def _too_many_lines() -> BodyTooLarge:
    return BodyTooLarge(f"An import file has at most {MAX_LINES:,} lines.", max_lines=MAX_LINES)


def _csv_copy(reader: _HashingReader, spool) -> int:
    newlines, last = 0, b"\n"
    while block := reader.read(READ_BYTES):
        newlines += block.count(b"\n")
        last = block[-1:]
        if newlines > MAX_LINES:
            raise _too_many_lines()
        spool.write(block)
    lines = newlines + (last != b"\n")
    if lines > MAX_LINES:
        raise _too_many_lines()
    return lines


def _json_lines(reader: _HashingReader, spool) -> int:
    """Write each item of `user_ids` as a line: integers as digits, anything else as its JSON
    (`"7"`, `1.5`, `true`, `{…}`), which the line parser then refuses with its item number."""
    lines, seen, buffer = 0, False, []
    try:
        for prefix, event, value in ijson.parse(_DigitRuns(reader), use_float=False):
            if prefix == "":
                if event == "map_key":
                    if value != "user_ids":
                        raise ValidationFailed({str(value)[:100]: ["Unknown field."]})
                    if seen:
                        raise MalformedJson("JSON parse error - the key 'user_ids' appears twice in one object")
                    seen = True
                elif event not in ("start_map", "end_map"):
                    raise ValidationFailed({"non_field_errors": ['Expected an object: {"user_ids": [...]}.']})
            elif prefix == "user_ids":
                if event not in ("start_array", "end_array"):
                    raise ValidationFailed({"user_ids": ["Expected a list of user ids."]})
            elif prefix == "user_ids.item" and event not in ("map_key", "end_map", "end_array"):
                lines += 1
                if lines > MAX_LINES:
                    raise _too_many_lines()
                buffer.append(_item_text(event, value))
                if len(buffer) >= 10_000:
                    spool.write(b"".join(buffer))
                    buffer.clear()
    except ijson.JSONError as exc:
        raise MalformedJson(f"JSON parse error - {str(exc)[:200]}") from None
    except ArithmeticError:  # a number ijson cannot make a Decimal of, such as 1e9999999999999999999
        raise ValidationFailed({"user_ids": ["A number out of range: a user id has at most 19 digits."]}) from None
    if not seen:
        raise ValidationFailed({"user_ids": ["This field is required."]})
    spool.write(b"".join(buffer))
    return lines


def _item_text(event: str, value) -> bytes:
    if event == "number" and type(value) is int:
        return b"%d\n" % value
    if event == "start_map":
        return b"{...}\n"
    if event == "start_array":
        return b"[...]\n"
    if event == "number":
        return f"{value}\n".encode()
    return json.dumps(value, ensure_ascii=False).encode()[:MAX_LINE_BYTES] + b"\n"
