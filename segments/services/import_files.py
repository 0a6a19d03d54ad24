"""Import files: a request body received into storage as lines, and read back line by line.

Whatever its form, a body is stored as one user id per line (CSV as sent; JSON's `user_ids`
one item a line, so that line N is item N), streamed through a temporary file: never held in
memory. Lines are checked later, by the worker (services/imports.py), with one parser.
"""

import hashlib
import json
import logging
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import ijson
from django.core.files import File
from django.core.files.storage import default_storage

from core.errors import BodyTooLarge, MalformedJson, ServiceUnavailable, ValidationFailed
from core.serializers import unknown_field

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
# The parser's work grows with the square of the nesting depth, and it holds a string whole, both in C
# without releasing the GIL: 70,000 nested brackets froze a server process past its timeout, a 150 MiB
# string took a minute. `{"user_ids": [...]}` needs neither: a JSON body nested deeper than a list in an
# object, or with a string longer than a stored line (a string item is an invalid line anyway), is
# refused as it is read, before the parser sees the read.
MAX_DEPTH = 2
MAX_STRING_BYTES = MAX_LINE_BYTES  # as sent, between the quotes, escapes included
_STRUCTURE = re.compile(rb'[\[\]{}"]')
_STRING_RUN = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)  # up to the closing quote, or a lone \ ending the read
_NESTED_TOO_DEEP = 'Nested deeper than a list in an object: send {"user_ids": [1, 2, ...]}.'
_STRING_TOO_LONG = f"A string of more than {MAX_STRING_BYTES} bytes: a user id is a number."


@dataclass(frozen=True)
class ReceivedFile:
    name: str  # in storage
    sha256: str  # of the body as sent
    lines: int
    size: int  # of the stored file, in bytes


def import_file_receive(body: BinaryIO, *, format: str, header: bool = False) -> ReceivedFile:
    """Store `body` under imports/ as lines: `csv` and `ndjson` as sent, `json` an item of its user ids
    a line; refuse more than MAX_LINES lines (and a `header` line) with 413 and, for JSON, anything but
    `{"user_ids": [...]}` (400)."""
    max_lines = MAX_LINES + header
    reader = _HashingReader(body)
    try:
        with tempfile.TemporaryFile() as spool:
            lines = _json_lines(reader, spool) if format == "json" else _csv_copy(reader, spool, max_lines)
            size = spool.tell()
            spool.seek(0)
            path = f"{IMPORTS_DIR}/{secrets.token_urlsafe(24)}.txt"
            name = default_storage.save(path, File(spool, name="import.txt"))
    except OSError as exc:  # disk full, read-only or missing folder: the client may retry, the operator must act
        logger.error("import file not stored: %s", exc)
        raise ServiceUnavailable(f"The import file could not be stored ({exc.strerror or exc}); retry later.") from None
    return ReceivedFile(name=name, sha256=reader.sha256.hexdigest(), lines=lines, size=size)


def import_file_lines(name: str, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The stored file's lines without their line ends, line 1 first; a line longer than
    `max_line_bytes` is cut one byte past it (the parser refuses it). Memory stays within a block and a line."""
    with default_storage.open(name, "rb") as file:
        carry = b""
        while block := file.read(LINES_READ_BYTES):
            pieces = (carry + block).split(b"\n")
            carry = pieces.pop()
            if len(carry) > max_line_bytes:
                carry = carry[: max_line_bytes + 1]
            for piece in pieces:
                yield piece[: max_line_bytes + 1].rstrip(b"\r")
        if carry:
            yield carry.rstrip(b"\r")


def import_file_delete(name: str) -> None:
    if name:
        default_storage.delete(name)


def import_files_written_before(cutoff: datetime) -> list[str]:
    """The names (as imports store them) of the files under imports/ last written before `cutoff`."""
    try:
        _, names = default_storage.listdir(IMPORTS_DIR)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = f"{IMPORTS_DIR}/{name}"
        try:
            if default_storage.get_modified_time(path) < cutoff:
                found.append(path)
        except FileNotFoundError:  # deleted meanwhile, by its import's end
            pass
    return found


class _HashingReader:
    """The body as read, hashed on the way."""

    def __init__(self, body: BinaryIO) -> None:
        self.body = body
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.body.read(size)
        self.sha256.update(data)
        return data


class _JsonGuard:
    """The JSON body as read, refused (400) as soon as what was read holds a run of more than MAX_DIGITS digits,
    a bracket nested deeper than MAX_DEPTH, or a string longer than MAX_STRING_BYTES, even across reads.

    A byte-level scan, at the regular expression engine's speed: a read costs a step per string and per
    bracket in it, and a body of numbers (the usual one) one step. Brackets inside strings do not count;
    a string ends at a quote that no backslash escapes.
    """

    def __init__(self, body) -> None:
        self.body = body
        self.tail = b""  # the digits that end what was read so far, as "0"s, up to MAX_DIGITS
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the last read ended with the backslash of an escape
        self.string_bytes = 0  # of the string being read so far

    def read(self, size: int = -1) -> bytes:
        data = self.body.read(size)
        digits = self.tail + data.translate(_DIGITS_ONLY)
        if _TOO_MANY_DIGITS in digits:
            raise ValidationFailed({"user_ids": [f"More than {MAX_DIGITS} digits in a row: a user id has at most 19."]})
        self.tail = digits[len(digits.rstrip(b"0")) :]
        self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        pos, end = 0, len(data)
        if self.escaped and data:
            pos, self.escaped = 1, False
            self.string_bytes += 1
        while pos < end:
            if self.in_string:
                stop = _STRING_RUN.match(data, pos).end()
                self.string_bytes += stop - pos
                if stop == end:
                    pos = end
                elif data[stop] == 0x22:  # the closing quote
                    self.in_string, pos = False, stop + 1
                else:  # a backslash ending the read: what it escapes comes with the next read
                    self.escaped, pos = True, end
                    self.string_bytes += 1
                if self.string_bytes > MAX_STRING_BYTES:
                    raise ValidationFailed({"non_field_errors": [_STRING_TOO_LONG]})
                continue
            found = _STRUCTURE.search(data, pos)
            if found is None:
                return
            pos = found.end()
            byte = data[found.start()]
            if byte == 0x22:
                self.in_string, self.string_bytes = True, 0
            elif byte in b"[{":
                self.depth += 1
                if self.depth > MAX_DEPTH:
                    raise ValidationFailed({"non_field_errors": [_NESTED_TOO_DEEP]})
            else:  # a closer too many is the parser's to refuse; counting it must not make room for more depth
                self.depth = max(self.depth - 1, 0)


def _too_many_lines(max_lines: int | None = None) -> BodyTooLarge:
    max_lines = max_lines or MAX_LINES
    return BodyTooLarge(f"An import file has at most {max_lines:,} lines.", max_lines=max_lines)


def _csv_copy(reader: _HashingReader, spool, max_lines: int) -> int:
    newlines, last = 0, b"\n"
    while block := reader.read(READ_BYTES):
        newlines += block.count(b"\n")
        last = block[-1:]
        if newlines > max_lines:
            raise _too_many_lines(max_lines)
        spool.write(block)
    lines = newlines + (last != b"\n")
    if lines > max_lines:
        raise _too_many_lines(max_lines)
    return lines


def _json_lines(reader: _HashingReader, spool) -> int:
    """Write each item of `user_ids` as a line: integers as digits, anything else as its JSON
    (`"7"`, `1.5`, `true`), which the line parser then refuses with its item number. No item is a list
    or an object (_JsonGuard refuses the body)."""
    lines, seen, buffer = 0, False, []
    try:
        for prefix, event, value in ijson.parse(_JsonGuard(reader), use_float=False):
            if prefix == "":
                if event == "map_key":
                    if value != "user_ids":
                        raise ValidationFailed({str(value)[:100]: [unknown_field(str(value)[:100], ["user_ids"])]})
                    if seen:
                        raise MalformedJson("JSON parse error - the key 'user_ids' appears twice in one object")
                    seen = True
                elif event not in ("start_map", "end_map"):
                    raise ValidationFailed({"non_field_errors": ['Expected an object: {"user_ids": [...]}.']})
            elif prefix == "user_ids":
                if event not in ("start_array", "end_array"):
                    raise ValidationFailed({"user_ids": ["Expected a list of user ids."]})
            elif prefix == "user_ids.item":
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
    if event == "number":
        return f"{value}\n".encode()
    return json.dumps(value, ensure_ascii=False).encode()[:MAX_LINE_BYTES] + b"\n"
