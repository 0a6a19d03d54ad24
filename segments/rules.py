"""Segment rules: checking a condition tree, compiling it to one jsonpath, and reading it as text.

A rule is evaluated only by PostgreSQL, against each user's rule document (users_attributes_document,
users migration 0002: every attribute under its key as `{"s"|"n"|"b"|"l": value}`, a string with `"v"`,
a version's sortable key, and `"t"`, a timestamp's epoch seconds, when it is one). Reading the value
under the member of the operator's type makes a condition on a missing attribute or on a value of another
type an empty comparison, which is false, never unknown, so `!` of it is true; a list is read with
`[*]` by `has` alone, so lax mode's unwrapping never lets `eq` see a list's strings. Relative times
read `$now` (epoch seconds), passed with jsonb_path_match; a rule without them is used with `@@`,
which a GIN jsonb_path_ops index on the document serves. See docs/rules.md.
"""

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from core.errors import ValidationFailed
from segments.attributes import KEY, text_error

MAX_NODES = 100
MAX_DEPTH = 5
MAX_CONDITIONS = 100
MAX_VALUES = 1000

COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
OPERATORS = (
    *COMPARISONS,
    *("in", "not_in", "contains", "starts_with", "has", "exists", "not_exists"),
    *("before", "after", "version_gte", "version_lt"),
)
DURATION = re.compile(r"([+-]?)P(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?")
DURATION_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
DURATION_TEXT = "a duration from now of weeks, days, hours, minutes and whole seconds (-P30D, -PT20S, P7D)"


@dataclass(frozen=True)
class CompiledRule:
    """A rule as PostgreSQL evaluates it: a jsonpath over users' rule documents, true for a matching user.

    `relative` says the path reads `$now`, the evaluation's time in epoch seconds (see rule_predicate).
    `matches_empty` says a user without attributes matches: a set-based scan must then reach users without
    an attributes row too (a join on users_user, document `coalesce(document, '{}')`); when it does not, the
    scan of users_userattributes alone is exact, and `@@` can use the index.
    """

    path: str
    relative: bool
    matches_empty: bool


def rule_predicate(rule: CompiledRule, *, document: str, now: datetime | None = None) -> tuple[str, list]:
    """SQL true where `document` (an SQL expression of a user's rule document) matches the rule, and its
    parameters: the one evaluation of a rule, for one user's document as for a set-based scan of everyone's.

    A user without attributes has the document `'{}'` (`coalesce(document, '{}')` in a join). A rule
    without relative times is `document @@ path`, which the GIN index on users' documents can serve; one
    with them is jsonb_path_match with `$now`, the epoch of `now` (the transaction's start when None).
    Both are silent: neither raises on any document, as neither path can fail.
    """
    if not rule.relative:
        return f"{document} @@ %s::jsonpath", [rule.path]
    predicate, params = rule_predicate_of("%s::jsonpath", document=document, now=now)
    return predicate, [rule.path, *params]


def rule_predicate_of(path: str, *, document: str, now: datetime | None = None) -> tuple[str, list]:
    """SQL true where `document` matches the compiled path that the SQL expression `path` gives, and its
    parameters: rule_predicate's form with relative times (jsonb_path_match, silent, `$now`), which gives any
    path its verdict, `@@`'s included, so that one statement can evaluate the rules of many segments, read
    from a column (a user against every rule segment). No index serves it: it is for a few users."""
    clock, params = ("now()", []) if now is None else ("%s::timestamptz", [now])
    return (
        f"jsonb_path_match({document}, {path}, jsonb_build_object('now', extract(epoch FROM {clock})), true)",
        params,
    )


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _literal(value) -> str:
    """A JSON scalar as a jsonpath literal (JSON's string escapes are jsonpath's)."""
    return json.dumps(value, ensure_ascii=False)


def _duration_seconds(value: str) -> int | None:
    match = DURATION.fullmatch(value)
    if match is None or not any(match.groups()[1:]):
        return None
    seconds = sum(int(part or 0) * unit for part, (_, unit) in zip(match.groups()[1:], DURATION_UNITS, strict=True))
    return -seconds if match[1] == "-" else seconds


class _Compiler:
    """One pass over a rule: collects every error under its path, and the jsonpath of a valid rule."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.conditions = 0
        self.relative = False
        self.pending: list[tuple[str, str, str, str]] = []  # (field, op, value, path) of each placeholder

    def error(self, path: str, message: str) -> str:
        self.errors.setdefault(path, []).append(message)
        return ""

    def node(self, node, path: str, depth: int) -> str:
        if not isinstance(node, dict) or not node:
            return self.error(path, "Expected a group (all, any, not) or a condition.")
        groups = [key for key in ("all", "any", "not") if key in node]
        if not groups:
            return self.condition(node, path)
        if len(node) > 1:
            return self.error(path, "A group has one key alone: all, any or not.")
        kind = groups[0]
        path = f"{path}.{kind}"
        if depth == MAX_DEPTH:
            return self.error(path, f"At most {MAX_DEPTH} groups nested in one another.")
        if kind == "not":
            inner = self.node(node["not"], path, depth + 1)
            return f"!({inner})"
        nodes = node[kind]
        if not isinstance(nodes, list) or not 1 <= len(nodes) <= MAX_NODES:
            return self.error(path, f"Expected a list of 1 to {MAX_NODES} nodes.")
        parts = [self.node(child, f"{path}[{index}]", depth + 1) for index, child in enumerate(nodes)]
        return "(" + (" && " if kind == "all" else " || ").join(parts) + ")"

    def condition(self, node: dict, path: str) -> str:
        self.conditions += 1
        for key in sorted(node.keys() - {"attribute", "op", "value"}):
            self.error(f"{path}.{key[:100]}", "Unknown field: a condition has attribute, op and value.")
        attribute, op = node.get("attribute"), node.get("op")
        if not isinstance(attribute, str) or not KEY.fullmatch(attribute):
            self.error(
                f"{path}.attribute", "An attribute name: 1 to 64 characters a-z, 0-9 and _, starting with a letter."
            )
        if op not in OPERATORS:
            return self.error(f"{path}.op", f"An operator, one of: {', '.join(OPERATORS)}.")
        if op in ("exists", "not_exists"):
            if "value" in node:
                return self.error(f"{path}.value", f"{op} takes no value.")
            return f'{"!" if op == "not_exists" else ""}exists($."{attribute}")'
        if "value" not in node:
            return self.error(f"{path}.value", "This field is required.")
        return self.compare(f'$."{attribute}"', op, node["value"], f"{path}.value")

    def text(self, value, path: str) -> bool:
        if not isinstance(value, str):
            self.error(path, "Expected a string.")
            return False
        error = text_error(value)
        if error:
            self.error(path, error)
        return error is None

    def compare(self, field: str, op: str, value, path: str) -> str:
        if op in ("eq", "ne"):
            if isinstance(value, str):
                self.text(value, path)
            elif not isinstance(value, bool) and not _number(value):
                return self.error(path, "Expected a string, a finite number or a boolean.")
            member = "s" if isinstance(value, str) else "b" if isinstance(value, bool) else "n"
            return f'{field}."{member}" {COMPARISONS[op]} {_literal(value)}'
        if op in ("lt", "lte", "gt", "gte"):
            if not _number(value):
                return self.error(path, "Expected a finite number.")
            return f'{field}."n" {COMPARISONS[op]} {_literal(value)}'
        if op in ("in", "not_in"):
            return self.among(field, op, value, path)
        if op in ("contains", "starts_with", "has"):
            if not self.text(value, path):
                return ""
            if op == "has":
                return f'{field}."l"[*] == {_literal(value)}'
            if op == "contains":
                return f'{field}."s" like_regex {_literal(value)} flag "q"'
            return f'{field}."s" starts with {_literal(value)}'
        if not self.text(value, path):
            return ""
        seconds = _duration_seconds(value) if op in ("before", "after") else None
        if seconds is None:
            return self.derived(field, op, value, path)
        self.relative = True
        return f'{field}."t" {"<" if op == "before" else ">"} ($now {"-" if seconds < 0 else "+"} {abs(seconds)})'

    def among(self, field: str, op: str, value, path: str) -> str:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_VALUES:
            return self.error(path, f"Expected a list of 1 to {MAX_VALUES:,} strings, or of numbers.")
        strings = isinstance(value[0], str)
        for index, item in enumerate(value):
            if strings and isinstance(item, str):
                self.text(item, f"{path}[{index}]")
            elif strings or not _number(item):
                self.error(f"{path}[{index}]", "Expected strings alone, or finite numbers alone.")
        member = "s" if strings else "n"
        joiner, comparison = (" || ", "==") if op == "in" else (" && ", "!=")
        return "(" + joiner.join(f'{field}."{member}" {comparison} {_literal(item)}' for item in value) + ")"

    def derived(self, field: str, op: str, value: str, path: str) -> str:
        """A placeholder for a comparison with a version's key or a timestamp's epoch (see resolve)."""
        self.pending.append((field, op, value, path))
        return f"\x00{len(self.pending) - 1}\x00"

    def resolve(self, jsonpath: str) -> str:
        """The jsonpath with each placeholder's comparison, the value derived by the functions that derive
        users' documents (users_version_key, users_timestamp_epoch), so that both read values alike."""
        if not self.pending:
            return jsonpath
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT users_version_key(v), users_timestamp_epoch(v)::text FROM unnest(%s::text[]) AS v",
                [[value for _, _, value, _ in self.pending]],
            )
            derived = cursor.fetchall()
        comparisons = []
        for (field, op, _, path), (key, epoch) in zip(self.pending, derived, strict=True):
            if op in ("version_gte", "version_lt"):
                if key is None:
                    self.error(path, "Expected a version: integers separated by dots (6.2, 6.10.0).")
                comparisons.append(f'{field}."v" {">=" if op == "version_gte" else "<"} {_literal(key)}')
            else:
                if epoch is None:
                    self.error(path, f"Expected an RFC 3339 timestamp (2024-01-31T10:00:00Z) or {DURATION_TEXT}.")
                comparisons.append(f'{field}."t" {"<" if op == "before" else ">"} {epoch}')
        return re.sub("\x00([0-9]+)\x00", lambda match: comparisons[int(match[1])], jsonpath)


def rule_compile(*, rule) -> CompiledRule:
    """The compiled form of a rule (a condition tree as the contract has it), checked whole.

    Raises ValidationFailed naming the path of every bad node (`rule.all[1].value`). Reads the database:
    versions and timestamps in the rule are derived by the functions that derive users' documents.
    """
    compiler = _Compiler()
    jsonpath = compiler.node(rule, "rule", 0)
    if compiler.conditions > MAX_CONDITIONS:
        compiler.error("rule", f"At most {MAX_CONDITIONS} conditions; this rule has {compiler.conditions:,}.")
    else:
        jsonpath = compiler.resolve(jsonpath)
    if compiler.errors:
        raise ValidationFailed(compiler.errors)
    with connection.cursor() as cursor:  # on no attribute every condition is false but not_exists, whatever $now
        cursor.execute("SELECT jsonb_path_match('{}', %s::jsonpath, '{\"now\": 0}', true)", [jsonpath])
        matches_empty = cursor.fetchone()[0]
    return CompiledRule(path=jsonpath, relative=compiler.relative, matches_empty=matches_empty)


OPERATOR_TEXT = {
    **{"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "version_gte": "≥", "version_lt": "<"},
    **{"in": "in", "not_in": "not in", "contains": "contains", "starts_with": "starts with", "has": "has"},
    **{"before": "before", "after": "after"},
}


def _value_text(value, op: str) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(item, op) for item in value) + "]"
    if not isinstance(value, str):
        return _literal(value)
    duration = DURATION.fullmatch(value) if op in ("before", "after") else None
    if duration and _duration_seconds(value) is not None:
        counts = zip((int(count or 0) for count in duration.groups()[1:]), DURATION_UNITS, strict=True)
        amount = " ".join(f"{count} {name}{'' if count == 1 else 's'}" for count, (name, _) in counts if count)
        return "now" if not amount else f"{amount} ago" if duration[1] == "-" else f"{amount} from now"
    if op in ("eq", "ne", "in", "not_in"):  # a string that reads as a number, a boolean or a list's punctuation
        try:
            ambiguous = not isinstance(json.loads(value), str)
        except ValueError:
            ambiguous = any(character in value for character in ',[]"')
    else:
        ambiguous = False
    return _literal(value) if ambiguous or not value or value != value.strip() else value


def _unwrapped(node: dict) -> dict:
    """The node a group of one node stands for."""
    while len(node.get("all") or node.get("any") or ()) == 1:
        node = next(iter(node.values()))[0]
    return node


def rule_text(rule: dict) -> str:
    """A valid rule as text a product manager reads: `city in [Moscow, Saint Petersburg] and app_version ≥ 6.2`.

    A string is quoted only when it could be read otherwise (`"30"`, `"a, b"`); a group within a group is
    in parentheses, and so is what `not` applies to.
    """
    rule = _unwrapped(rule)
    if "not" in rule:
        return f"not ({rule_text(rule['not'])})"
    for kind in ("all", "any"):
        if kind in rule:
            nodes = [_unwrapped(node) for node in rule[kind]]
            parts = [f"({rule_text(node)})" if "all" in node or "any" in node else rule_text(node) for node in nodes]
            return f" {'and' if kind == 'all' else 'or'} ".join(parts)
    op = rule["op"]
    if op in ("exists", "not_exists"):
        return f"{rule['attribute']} {'exists' if op == 'exists' else 'does not exist'}"
    return f"{rule['attribute']} {OPERATOR_TEXT[op]} {_value_text(rule['value'], op)}"
