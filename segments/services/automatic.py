"""Automatic membership: the members a segment's definition (its rule, its rollout percent, its exclusions)
gives it, kept equal to that definition set-based (API.md, "Segments defined by rules").

One evaluation serves every caller: a rule or percent change (every user, one segment), a registration and
an attribute write (some users, every segment), the time sweep (every user, the segments whose rule reads
the time) and verify_segments; the dry run and the preview count with the same SQL. The desired pairs are
computed by the database from each segment's compiled rule (segments/rules.py rule_predicate), its bucket
threshold and its exclusions; the missing ones are inserted, the automatic members (source `rule` or
`rollout`) no longer desired are deleted, and a kept automatic member whose segment changed kind (a rule set
or cleared) takes the new source without a history row. Manual members are never touched. The membership
journal writes history and events (source `rule` for a segment with a rule, `rollout` without).

Locks: an evaluation of every user locks its segments' rows (FOR NO KEY UPDATE, in id order) and then
the rollout lock exclusive; one of some users takes the rollout lock shared and then its segments FOR KEY
SHARE, as a registration does. So an evaluation of everyone sees every attribute write, registration and
exclusion committed before it, and those after it see its definition; their callers hold the user rows.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from core.db import CLOCK
from core.errors import UserNotFound
from segments.db import bucket_sql, rollout_lock
from segments.errors import SegmentNotFound
from segments.rules import CompiledRule, rule_predicate, rule_predicate_of
from segments.selectors import active_sql
from segments.services.journal import journal

AUTOMATIC = "('rule', 'rollout')"
NOBODY = "SELECT NULL::bigint AS user_id, NULL::bigint AS segment_id WHERE false"


def threshold(percent: Decimal | int | float) -> int:
    """Users with a bucket below this number are covered by a rollout of `percent`."""
    return int(round(Decimal(str(percent)) * 100))


@dataclass(frozen=True)
class Definition:
    """What a segment's automatic members are: its users matching `rule` (everyone when None) whose bucket
    is below `limit`, less its exclusions."""

    id: int
    slug: str
    limit: int
    rule: CompiledRule | None

    @property
    def kind(self) -> str:
        """The source of its automatic members and of the history of their changes."""
        return "rollout" if self.rule is None else "rule"


@dataclass(frozen=True)
class AutomaticResult:
    added: int
    removed: int
    entered: dict[int, list[str]] | None = None  # user id -> slugs joined, with `details`
    left: dict[int, list[str]] | None = None


def automatic_apply(
    *,
    actor: str,
    segment_ids: list[int] | None = None,
    user_ids: list[int] | None = None,
    rules_only: bool = False,
    details: bool = False,
    dry_run: bool = False,
) -> AutomaticResult:
    """Bring the automatic members of segments (all, or `segment_ids`; only those with a rule when
    `rules_only`) in line with their definitions, for every user or for `user_ids`. Returns how many
    memberships were added and removed, and with `details` which users entered and left which segments.
    `dry_run` counts the changes and makes none. Runs in the caller's transaction if any (the caller that
    changed a user's attributes holds that user's row)."""
    with transaction.atomic():
        definitions = segment_definitions(
            segment_ids=segment_ids, rules_only=rules_only, lock=None if dry_run else user_ids is None
        )
        if dry_run:
            return AutomaticResult(*automatic_count(definitions, user_ids=user_ids))
        return _apply(definitions, user_ids=user_ids, actor=actor, details=details)


def segment_definitions(
    *, segment_ids: list[int] | None = None, rules_only: bool = False, lock: bool | None = None
) -> list[Definition]:
    """The definitions of segments (all, or `segment_ids`), in id order. `lock` True: for an evaluation of
    every user (segment rows FOR NO KEY UPDATE, then the rollout lock exclusive); False: of some users (the
    rollout lock shared, then segment rows FOR KEY SHARE); None: no lock.

    With `lock` True the rows are locked first and read after the rollout lock, by a statement of its own:
    a row locked after waiting for a change of its rule would come back changed, but joined with its old
    compiled rule."""
    rules = " AND EXISTS (SELECT 1 FROM segments_segmentrule r WHERE r.segment_id = s.id)" if rules_only else ""
    where, params = ("s.id = ANY(%s)", [list(segment_ids)]) if segment_ids is not None else ("true", [])
    with connection.cursor() as cursor:
        if lock is True:
            cursor.execute(
                f"SELECT s.id FROM segments_segment s WHERE {where}{rules} ORDER BY s.id FOR NO KEY UPDATE", params
            )
            where, params = "s.id = ANY(%s)", [[row[0] for row in cursor.fetchall()]]
            rollout_lock(shared=False)
        elif lock is False:
            rollout_lock(shared=True)
        cursor.execute(
            "SELECT s.id, s.slug, s.rollout_percent, r.path, r.relative, r.matches_empty"
            " FROM segments_segment s LEFT JOIN segments_segmentrule r ON r.segment_id = s.id"
            f" WHERE {where}{rules} ORDER BY s.id{' FOR KEY SHARE OF s' if lock is False else ''}",
            params,
        )
        rows = cursor.fetchall()
    return [
        Definition(id, slug, threshold(percent), None if path is None else CompiledRule(path, relative, empty))
        for id, slug, percent, path, relative, empty in rows
    ]


def definition_with(definition: Definition, *, rule: CompiledRule | None = ..., percent=None) -> Definition:
    """The definition as it would be with another rule or percent (a dry run, a preview)."""
    changed = definition if rule is ... else replace(definition, rule=rule)
    return changed if percent is None else replace(changed, limit=threshold(percent))


def matching_sql(rule: CompiledRule | None, *, scoped: bool = False, lock: bool = False) -> tuple[str, list]:
    """`SELECT <user id> AS user_id FROM … WHERE …` of the registered users that `rule` matches (everyone
    when None), only those in the statement's `scope_users` (see _with) when `scoped`: the one place a rule
    meets users. `lock`: the users FOR KEY SHARE, as the foreign key check of their insert would take it at
    the statement's end, so that a user being deleted is waited for and skipped, rather than failing the
    whole statement."""
    if rule is None:
        sql, column, params = "SELECT u.id AS user_id FROM users_user u WHERE true", "u.id", []
    elif rule.matches_empty:
        predicate, params = rule_predicate(rule, document="coalesce(a.document, '{}'::jsonb)")
        sql = (
            "SELECT u.id AS user_id FROM users_user u LEFT JOIN users_userattributes a ON a.user_id = u.id"
            f" WHERE {predicate}"
        )
        column = "u.id"
    else:
        # Every attributes row has its user (foreign key): the scan of attributes alone is exact.
        predicate, params = rule_predicate(rule, document="a.document")
        join = " JOIN users_user u ON u.id = a.user_id" if lock else ""
        sql, column = f"SELECT a.user_id AS user_id FROM users_userattributes a{join} WHERE {predicate}", "a.user_id"
    if scoped:
        sql += f" AND {column} IN (SELECT id FROM scope_users)"
    if lock:
        sql += " FOR KEY SHARE OF u"
    return sql, params


def _with(definitions: list[Definition], user_ids: list[int] | None, *, lock: bool = False) -> tuple[str, list]:
    """The statement's `WITH`: `desired` (user_id, segment_id), the automatic members the definitions give;
    of `scope_users` (the users evaluated, sent once) when `user_ids` is given. `lock`: see matching_sql.

    Every user: a `UNION ALL` of each segment's scan (rule_predicate, which the index can serve). Some
    users: one join of those users with every definition, each rule read from the definitions' column
    (rule_predicate_of), planned once however many segments."""
    definitions = [definition for definition in definitions if definition.limit > 0]  # others desire no one
    if user_ids is not None:
        return _with_users(definitions, user_ids, lock=lock)
    if not definitions:
        return f"WITH desired AS ({NOBODY})", []
    parts, params = [], []
    for definition in definitions:
        matching, matching_params = matching_sql(definition.rule, lock=lock)
        parts.append(
            f"SELECT d.user_id, %s::bigint AS segment_id FROM ({matching}) d"
            f" WHERE {bucket_sql('%s', 'd.user_id')} < %s AND NOT EXISTS ("
            " SELECT 1 FROM segments_exclusion e WHERE e.segment_id = %s AND e.user_id = d.user_id)"
        )
        params += [definition.id, *matching_params, definition.slug, definition.limit, definition.id]
    return f"WITH desired AS MATERIALIZED ({' UNION ALL '.join(parts)})", params


def _with_users(definitions: list[Definition], user_ids: list[int], *, lock: bool) -> tuple[str, list]:
    scope_users = "WITH scope_users AS MATERIALIZED (SELECT DISTINCT unnest(%s::bigint[]) AS id),"
    if not definitions:
        return f"{scope_users} desired AS ({NOBODY})", [list(user_ids)]
    predicate, predicate_params = rule_predicate_of("s.path", document="coalesce(a.document, '{}'::jsonb)")
    sql = (
        f"{scope_users} desired AS MATERIALIZED ("
        "  SELECT u.id AS user_id, s.id AS segment_id"
        "  FROM scope_users su JOIN users_user u ON u.id = su.id"
        "  LEFT JOIN users_userattributes a ON a.user_id = u.id"
        "  CROSS JOIN unnest(%s::bigint[], %s::text[], %s::integer[], %s::jsonpath[]) AS s(id, slug, lim, path)"
        f"  WHERE {bucket_sql('s.slug', 'u.id')} < s.lim AND (s.path IS NULL OR {predicate})"
        "  AND NOT EXISTS (SELECT 1 FROM segments_exclusion e WHERE e.segment_id = s.id AND e.user_id = u.id)"
        f"{' FOR KEY SHARE OF u' if lock else ''})"
    )
    columns = [
        [definition.id for definition in definitions],
        [definition.slug for definition in definitions],
        [definition.limit for definition in definitions],
        [None if definition.rule is None else definition.rule.path for definition in definitions],
    ]
    return sql, [list(user_ids), *columns, *predicate_params]


def _scope(definitions: list[Definition], user_ids: list[int] | None) -> tuple[str, list]:
    """SQL for "membership m is of these segments (and of the users evaluated)"."""
    sql = "m.segment_id = ANY(%s)"
    if user_ids is not None:
        sql += " AND m.user_id IN (SELECT id FROM scope_users)"
    return sql, [[definition.id for definition in definitions]]


def automatic_count(definitions: list[Definition], *, user_ids: list[int] | None = None) -> tuple[int, int]:
    """(added, removed): the changes that applying the definitions would make now (nothing is changed)."""
    if not definitions:
        return 0, 0
    with_sql, with_params = _with(definitions, user_ids)
    scope, scope_params = _scope(definitions, user_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{with_sql}"
            " SELECT (SELECT count(*) FROM desired d WHERE NOT EXISTS (SELECT 1 FROM segments_membership m"
            f"   WHERE m.user_id = d.user_id AND m.segment_id = d.segment_id AND {active_sql('m')})),"
            f" (SELECT count(*) FROM segments_membership m WHERE {scope} AND m.source IN {AUTOMATIC}"
            f"   AND {active_sql('m')} AND NOT EXISTS (SELECT 1 FROM desired d"
            "     WHERE d.user_id = m.user_id AND d.segment_id = m.segment_id))",
            [*with_params, *scope_params],
        )
        added, removed = cursor.fetchone()
    return added, removed


def _apply(definitions: list[Definition], *, user_ids: list[int] | None, actor: str, details: bool) -> AutomaticResult:
    if not definitions:
        return AutomaticResult(0, 0, {} if details else None, {} if details else None)
    scope, scope_params = "segment_id = ANY(%s)", [[definition.id for definition in definitions]]
    if user_ids is not None:
        scope, scope_params = f"{scope} AND user_id = ANY(%s)", [*scope_params, list(user_ids)]
    with connection.cursor() as cursor:
        # Due memberships leave first (the journal writes them as `ttl`), so that their users can join again.
        cursor.execute(f"DELETE FROM segments_membership WHERE {scope} AND expires_at <= now()", scope_params)
    slugs = {definition.id: definition.slug for definition in definitions}
    changes = []
    for kind in ("rollout", "rule"):  # one statement per kind: the journal's source is the statement's
        of_kind = [definition for definition in definitions if definition.kind == kind]
        if of_kind:
            changes += _apply_kind(of_kind, kind=kind, user_ids=user_ids, actor=actor)
    added = sum(1 for operation, _, _ in changes if operation == "added")
    result = AutomaticResult(added, len(changes) - added)
    if not details:
        return result
    entered, left = {}, {}
    for operation, user_id, segment_id in sorted(changes, key=lambda change: (change[1], slugs[change[2]])):
        (entered if operation == "added" else left).setdefault(user_id, []).append(slugs[segment_id])
    return replace(result, entered=entered, left=left)


def _apply_kind(
    definitions: list[Definition], *, kind: str, user_ids: list[int] | None, actor: str
) -> list[tuple[str, int, int]]:
    """Apply definitions of one kind in one statement; (operation, user id, segment id) of each change."""
    with_sql, with_params = _with(definitions, user_ids, lock=True)
    scope, scope_params = _scope(definitions, user_ids)
    with journal(source=kind, actor=actor), connection.cursor() as cursor:
        cursor.execute(
            f"{with_sql},"
            " removed AS ("
            f"  DELETE FROM segments_membership m WHERE {scope} AND m.source IN {AUTOMATIC}"
            "   AND NOT EXISTS (SELECT 1 FROM desired d WHERE d.user_id = m.user_id AND d.segment_id = m.segment_id)"
            "   RETURNING m.user_id, m.segment_id),"
            " added AS ("
            "  INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)"
            f"  SELECT d.user_id, d.segment_id, %s, {CLOCK}, NULL FROM desired d"
            "   WHERE NOT EXISTS (SELECT 1 FROM segments_membership m"
            "     WHERE m.user_id = d.user_id AND m.segment_id = d.segment_id)"
            "   ORDER BY d.segment_id, d.user_id"
            "  ON CONFLICT (user_id, segment_id) DO NOTHING RETURNING user_id, segment_id),"
            " switched AS ("
            "  UPDATE segments_membership m SET source = %s FROM desired d"
            "   WHERE m.user_id = d.user_id AND m.segment_id = d.segment_id"
            f"   AND m.source IN {AUTOMATIC} AND m.source <> %s)"
            " SELECT 'added', user_id, segment_id FROM added"
            " UNION ALL SELECT 'removed', user_id, segment_id FROM removed",
            [*with_params, *scope_params, kind, kind, kind],
        )
        return cursor.fetchall()


def automatic_verify(*, segment_ids: list[int] | None = None) -> list[tuple[str, int, str]]:
    """Every disagreement between stored automatic membership and its definition, recomputed set-based:
    (slug, user id, "missing" for a user that should be in and is not a member, "extra" for a `rule` or
    `rollout` member that should not be), ordered by slug and user id."""
    definitions = segment_definitions(segment_ids=segment_ids)
    if not definitions:
        return []
    with_sql, with_params = _with(definitions, None)
    scope, scope_params = _scope(definitions, None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{with_sql}"
            " SELECT s.slug, w.user_id, w.problem FROM ("
            "  SELECT d.user_id, d.segment_id, 'missing' AS problem FROM desired d WHERE NOT EXISTS ("
            "   SELECT 1 FROM segments_membership m WHERE m.user_id = d.user_id AND m.segment_id = d.segment_id"
            f"   AND {active_sql('m')})"
            "  UNION ALL"
            f"  SELECT m.user_id, m.segment_id, 'extra' FROM segments_membership m WHERE {scope}"
            f"   AND m.source IN {AUTOMATIC} AND {active_sql('m')} AND NOT EXISTS ("
            "   SELECT 1 FROM desired d WHERE d.user_id = m.user_id AND d.segment_id = m.segment_id)"
            " ) w JOIN segments_segment s ON s.id = w.segment_id ORDER BY s.slug, w.user_id",
            [*with_params, *scope_params],
        )
        return cursor.fetchall()


def relative_rules_apply() -> int:
    """The time sweep: re-evaluate the segments whose rule reads the time (`-P30D`), as actor `system`; returns
    how many memberships changed. The worker runs it every minute (tasks.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT segment_id FROM segments_segmentrule WHERE relative ORDER BY segment_id")
        segment_ids = [row[0] for row in cursor.fetchall()]
    if not segment_ids:
        return 0
    result = automatic_apply(actor="system", segment_ids=segment_ids, rules_only=True)
    return result.added + result.removed


@dataclass(frozen=True)
class Explanation:
    """Why a user is, or is not, in a segment (API.md: GET /api/v1/users/{user_id}/segments/{slug}/)."""

    user_id: int
    segment: str
    member: bool
    source: str | None
    added_at: datetime | None
    expires_at: datetime | None
    rule_matches: bool | None  # None: the segment has no rule
    bucket: int
    in_rollout: bool
    excluded: bool


def membership_explain(*, user_id: int, slug: str) -> Explanation:
    """The user's membership of the segment and each part of its definition, evaluated by the same SQL as
    the apply. UserNotFound, SegmentNotFound."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM users_user WHERE id = %s)", [user_id])
        if not cursor.fetchone()[0]:
            raise UserNotFound(user_id)
        cursor.execute("SELECT id FROM segments_segment WHERE slug = %s", [slug])
        row = cursor.fetchone()
        if row is None:
            raise SegmentNotFound([slug])
        [definition] = segment_definitions(segment_ids=[row[0]])
        cursor.execute(
            f"SELECT m.source, m.added_at, m.expires_at FROM segments_membership m"
            f" WHERE m.user_id = %s AND m.segment_id = %s AND {active_sql('m')}",
            [user_id, definition.id],
        )
        membership = cursor.fetchone()
        rule_matches = None
        if definition.rule is not None:
            matching, params = matching_sql(definition.rule, scoped=True)
            cursor.execute(
                "WITH scope_users AS (SELECT %s::bigint AS id)"
                f" SELECT EXISTS ({matching}), {bucket_sql('%s', '%s::bigint')}",
                [user_id, *params, definition.slug, user_id],
            )
            rule_matches, user_bucket = cursor.fetchone()
        else:
            cursor.execute(f"SELECT {bucket_sql('%s', '%s::bigint')}", [definition.slug, user_id])
            user_bucket = cursor.fetchone()[0]
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM segments_exclusion WHERE segment_id = %s AND user_id = %s)",
            [definition.id, user_id],
        )
        excluded = cursor.fetchone()[0]
    source, added_at, expires_at = membership or (None, None, None)
    return Explanation(
        user_id,
        slug,
        membership is not None,
        source,
        added_at,
        expires_at,
        rule_matches,
        user_bucket,
        user_bucket < definition.limit,
        excluded,
    )
