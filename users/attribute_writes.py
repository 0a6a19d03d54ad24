"""Writing users' attributes (API.md, "Segments defined by rules"): one user or a batch, all or nothing, each
write evaluating the written users against the rule segments in its own transaction."""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from psycopg.types.json import Jsonb

from core.db import CLOCK
from core.errors import UserNotFound, ValidationFailed
from segments.attributes import attributes_clean, attributes_merge
from segments.services import automatic_apply
from users.services import users_insert


@dataclass(frozen=True)
class AttributesWritten:
    """What a write did: users registered, existing users written, and per user the segments entered and left."""

    created: list[int]
    updated: int
    entered: dict[int, list[str]] = field(default_factory=dict)
    left: dict[int, list[str]] = field(default_factory=dict)


def user_attributes_get(*, user_id: int) -> tuple[dict, datetime | None]:
    """A user's attributes and when they were last written (None: never). UserNotFound for an unknown user."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attributes::text, a.updated_at FROM users_user u"
            " LEFT JOIN users_userattributes a ON a.user_id = u.id WHERE u.id = %s",
            [user_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise UserNotFound(user_id)
    return json.loads(row[0] or "{}"), row[1]


def users_attributes_write(
    *, items: list[tuple[int, object]], merge: bool, register: bool, actor: str, path: str = "users[{index}].attributes"
) -> AttributesWritten:
    """Write the attributes of users (each once): replace them, or merge each patch (RFC 7396) into them.

    All or nothing: every item is checked (ValidationFailed naming each bad one under `path`), unknown users
    are registered when `register`, else UserNotFound for the first. The users' rows are locked in id order
    (FOR NO KEY UPDATE), so that one user's writes serialise; the users whose attributes changed, and those
    registered, are then evaluated against the segments (services/automatic.py) in the same transaction.
    """
    with transaction.atomic():
        ids = sorted(user_id for user_id, _ in items)
        created = users_insert(user_ids=ids) if register else []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT u.id, a.attributes::text FROM users_user u LEFT JOIN users_userattributes a ON a.user_id = u.id"
                " WHERE u.id = ANY(%s) ORDER BY u.id FOR NO KEY UPDATE OF u",
                [ids],
            )
            current = {user_id: json.loads(text or "{}") for user_id, text in cursor.fetchall()}
        missing = [user_id for user_id, _ in items if user_id not in current]
        if missing:
            raise UserNotFound(missing[0])
        written, errors = {}, {}
        for index, (user_id, attributes) in enumerate(items):
            where = path.format(index=index)
            try:
                if merge:
                    written[user_id] = attributes_merge(current=current[user_id], patch=attributes, path=where)
                else:
                    written[user_id] = attributes_clean(attributes=attributes, path=where)
            except ValidationFailed as exc:
                errors.update(exc.extra["errors"])
        if errors:
            raise ValidationFailed(errors)
        changed = [user_id for user_id in ids if written[user_id] != (current[user_id])]
        if changed:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO users_userattributes (user_id, attributes, updated_at)"
                    f" SELECT user_id, attributes, {CLOCK}"
                    " FROM unnest(%s::bigint[], %s::jsonb[]) AS w(user_id, attributes)"
                    " ON CONFLICT (user_id) DO UPDATE"
                    " SET attributes = EXCLUDED.attributes, updated_at = EXCLUDED.updated_at",
                    [changed, [Jsonb(written[user_id]) for user_id in changed]],
                )
        entered, left = {}, {}
        new, rewritten = set(created), [user_id for user_id in changed if user_id not in set(created)]
        for user_ids, rules_only in ((sorted(new), False), (rewritten, True)):
            if user_ids:
                result = automatic_apply(actor=actor, user_ids=user_ids, rules_only=rules_only, details=True)
                entered.update(result.entered)
                left.update(result.left)
    return AttributesWritten(created, len(ids) - len(created), entered, left)


def user_attributes_write(*, user_id: int, attributes, merge: bool, register: bool, actor: str) -> AttributesWritten:
    """One user's write (PUT replaces and registers, PATCH merges): users_attributes_write of one item."""
    return users_attributes_write(
        items=[(user_id, attributes)], merge=merge, register=register, actor=actor, path="attributes"
    )
