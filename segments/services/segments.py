"""Creating, changing and deleting segments."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now

from segments.errors import SegmentExists, SegmentNotFound
from segments.models import Segment, SegmentRule
from segments.rules import CompiledRule, rule_compile
from segments.services.automatic import (
    automatic_apply,
    automatic_count,
    definition_with,
    matching_sql,
    segment_definitions,
)
from segments.services.journal import journal
from segments.services.memberships import memberships_remove_all

KEEP = object()  # segment_update's `rule` when the request gives none (None clears the rule)
SAMPLE_SIZE = 20


def segment_get(*, slug: str) -> Segment:
    segment = Segment.objects.filter(slug=slug).first()
    if segment is None:
        raise SegmentNotFound([slug])
    return segment


def _compiled(rule) -> CompiledRule | None:
    """The rule checked and compiled (ValidationFailed naming the bad node), before anything is written."""
    return None if rule is None else rule_compile(rule=rule)


def _rule_store(segment_id: int, compiled: CompiledRule | None) -> None:
    """Write (or delete) the compiled form of a segment's rule, beside the rule the segment row holds."""
    if compiled is None:
        SegmentRule.objects.filter(segment_id=segment_id).delete()
    else:
        SegmentRule.objects.update_or_create(
            segment_id=segment_id,
            defaults={"path": compiled.path, "relative": compiled.relative, "matches_empty": compiled.matches_empty},
        )


def _percent_for(rule, rollout_percent: Decimal | None, current: Decimal) -> Decimal | None:
    """The percent a request sets: the one given, else 100 when it sets a rule on a segment at 0, else none."""
    if rollout_percent is not None:
        return Decimal(rollout_percent)
    if rule is not None and rule is not KEEP and current == 0:
        return Decimal(100)
    return None


def segment_create(
    *,
    slug: str,
    description: str = "",
    rollout_percent: Decimal | None = None,
    rule: dict | None = None,
    actor: str,
) -> Segment:
    """Create a segment (a `segment.created` event); with a rule (its percent 100 unless given) or a percent,
    its automatic members join in the same transaction."""
    compiled = _compiled(rule)
    percent = _percent_for(rule, rollout_percent, Decimal(0)) or Decimal(0)
    with transaction.atomic(), journal(actor=actor):
        try:
            with transaction.atomic():
                segment = Segment.objects.create(slug=slug, description=description, rollout_percent=percent, rule=rule)
        except IntegrityError:
            raise SegmentExists(slug) from None
        _rule_store(segment.pk, compiled)
        if percent:
            automatic_apply(actor=actor, segment_ids=[segment.pk])
    return Segment.objects.get(pk=segment.pk)


def segment_update(
    *,
    slug: str,
    description: str | None = None,
    rollout_percent: Decimal | None = None,
    rule=KEEP,
    actor: str,
) -> Segment:
    """Change the fields given (None leaves description and percent as they are; `rule` None clears the rule);
    a `segment.updated` event for each write that changes one. A rule or percent changed is applied to the
    segment's automatic members in the same transaction."""
    compiled = None if rule is KEEP else _compiled(rule)
    with transaction.atomic(), journal(actor=actor):
        found = list(Segment.objects.raw("SELECT * FROM segments_segment WHERE slug = %s FOR NO KEY UPDATE", [slug]))
        segment = found[0] if found else None
        if segment is None:
            raise SegmentNotFound([slug])
        changes = {}
        if description is not None and description != segment.description:
            changes["description"] = description
        percent = _percent_for(rule, rollout_percent, segment.rollout_percent)
        if percent is not None and percent != segment.rollout_percent:
            changes["rollout_percent"] = percent
        if rule is not KEEP and rule != segment.rule:
            changes["rule"] = rule
            _rule_store(segment.pk, compiled)
        if changes:
            Segment.objects.filter(pk=segment.pk).update(**changes, updated_at=Now())
        if changes.keys() & {"rollout_percent", "rule"}:
            automatic_apply(actor=actor, segment_ids=[segment.pk])
    return Segment.objects.get(pk=segment.pk)


def segment_upsert(
    *,
    slug: str,
    description: str | None = None,
    rollout_percent: Decimal | None = None,
    rule=KEEP,
    actor: str,
) -> tuple[Segment, bool]:
    """PUT: create the segment if it is missing, else change the fields given. Returns (segment, created)."""
    with transaction.atomic():
        try:
            return (
                segment_create(
                    slug=slug,
                    description=description or "",
                    rollout_percent=rollout_percent,
                    rule=None if rule is KEEP else rule,
                    actor=actor,
                ),
                True,
            )
        except SegmentExists:
            pass
        return segment_update(
            slug=slug, description=description, rollout_percent=rollout_percent, rule=rule, actor=actor
        ), False


@dataclass(frozen=True)
class RulePreview:
    matching: int
    would_add: int
    would_remove: int
    sample_user_ids: list[int]


def rule_preview(*, slug: str, rule: dict | None) -> RulePreview:
    """What setting `rule` on the segment would do now, changing nothing: the users it matches (before the
    percent; the first 20 by id), and the memberships saving it would add and remove (with the percent
    saving it would set). The same SQL as the apply (services/automatic.py)."""
    compiled = _compiled(rule)
    segment = segment_get(slug=slug)
    [definition] = segment_definitions(segment_ids=[segment.pk])
    proposed = definition_with(definition, rule=compiled, percent=_percent_for(rule, None, segment.rollout_percent))
    matching, params = matching_sql(compiled)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({matching}) m", params)
        count = cursor.fetchone()[0]
        cursor.execute(f"SELECT user_id FROM ({matching}) m ORDER BY user_id LIMIT %s", [*params, SAMPLE_SIZE])
        sample = [row[0] for row in cursor.fetchall()]
    return RulePreview(count, *automatic_count([proposed]), sample)


def segment_delete(*, slug: str, actor: str) -> int:
    """Delete a segment; every member leaves with a `segment_deleted` event. Returns how many."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM segments_segment WHERE slug = %s FOR UPDATE", [slug])
            row = cursor.fetchone()
            if row is None:
                raise SegmentNotFound([slug])
            segment_id = row[0]
        removed = memberships_remove_all(segment_id=segment_id, source="segment_deleted", actor=actor)
        with journal(actor=actor), connection.cursor() as cursor:
            cursor.execute("DELETE FROM segments_segment WHERE id = %s", [segment_id])
    return removed
