"""The segments admin's own pages: rollout confirmation, CSV import and export, adding many members."""

import csv
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal

from django.contrib import messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from core.errors import ServiceError
from segments.admin.forms import ImportForm, MembersAddForm
from segments.models import Import, Membership, Segment
from segments.rules import rule_text
from segments.services import import_create, memberships_add_users, rollout_apply, rule_preview, segment_create

EXPORT_BATCH = 5000


def rollout_preview(*, slug: str, percent: Decimal, exists: bool, actor: str):
    """The rollout service's dry run; for a segment not created yet, inside a transaction rolled back."""
    if exists:
        return rollout_apply(slug=slug, percent=percent, actor=actor, dry_run=True)
    with transaction.atomic():
        segment_create(slug=slug, actor=actor)
        result = rollout_apply(slug=slug, percent=percent, actor=actor, dry_run=True)
        transaction.set_rollback(True)
    return result


def rollout_confirm_response(
    model_admin, request, *, segment: Segment | None, slug: str, current: Decimal, percent: Decimal
):
    actor = request.user.get_username()
    result = rollout_preview(slug=slug, percent=percent, exists=segment is not None, actor=actor)
    hidden = [(key, value) for key, values in request.POST.lists() if key != "csrfmiddlewaretoken" for value in values]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Confirm the rollout of {slug}",
        "slug": slug,
        "segment": segment,
        "current": current,
        "result": result,
        "hidden": hidden,
    }
    return TemplateResponse(request, "admin/segments/segment/rollout_confirm.html", context)


def rule_confirm_response(
    model_admin, request, *, segment: Segment | None, slug: str, rule: dict | None, percent: Decimal | None
):
    """The counts of a rule change (rule_preview, the apply's dry run), before it is saved; for a segment not
    created yet, inside a transaction rolled back."""
    with transaction.atomic():
        if segment is None:
            segment_create(slug=slug, actor=request.user.get_username())
        preview = rule_preview(slug=slug, rule=rule, rollout_percent=percent)
        transaction.set_rollback(True)
    hidden = [(key, value) for key, values in request.POST.lists() if key != "csrfmiddlewaretoken" for value in values]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Confirm the rule of {slug}",
        "slug": slug,
        "segment": segment,
        "rule_text": None if rule is None else rule_text(rule),
        "percent": percent,
        "preview": preview,
        "hidden": hidden,
    }
    return TemplateResponse(request, "admin/segments/segment/rule_confirm.html", context)


def import_view(model_admin, request, segment: Segment):
    """The upload form; an upload becomes an import (as through the API), run by the worker, and the
    browser goes to its progress page."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            started, _ = import_create(
                slug=segment.slug,
                body=form.cleaned_data["file"],
                format="csv",
                mode=form.cleaned_data["mode"],
                ttl_seconds=form.cleaned_data["ttl_seconds"],
                register=form.cleaned_data["register"],
                actor=request.user.get_username(),
            )
        except ServiceError as exc:  # over the line limit, storage refusing the file, the segment deleted meanwhile
            form.add_error("file", exc.detail)
        else:
            return redirect("admin:segments_segment_import_progress", segment.pk, started.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Import members of {segment.slug}",
        "segment": segment,
        "form": form,
    }
    return TemplateResponse(request, "admin/segments/segment/import.html", context)


def import_progress_view(model_admin, request, segment: Segment, import_id: int):
    """An import's counts and problems; the page reloads itself every 2 s until the import has finished."""
    shown = get_object_or_404(Import, pk=import_id, segment_id=segment.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Import {shown.pk} into {segment.slug}",
        "segment": segment,
        "import": shown,
        "finished": shown.status in (Import.Status.SUCCEEDED, Import.Status.FAILED),
        "percent": round(100 * shown.done / shown.total) if shown.total else None,
    }
    return TemplateResponse(request, "admin/segments/segment/import_progress.html", context)


def members_add_view(model_admin, request):
    """Add many users to one segment through the membership service, all or nothing; then back to the
    segment's page with what changed."""
    widget = AutocompleteSelect(Membership._meta.get_field("segment"), model_admin.admin_site)
    data = _segment_id_checked(request.POST) if request.method == "POST" else None
    form = MembersAddForm(data, initial=_segment_id_checked(request.GET), segment_widget=widget)
    if request.method == "POST" and form.is_valid():
        segment = form.cleaned_data["segment"]
        try:
            changes = memberships_add_users(
                slug=segment.slug,
                user_ids=form.cleaned_data["user_ids"],
                expires_at=form.cleaned_data["expires_at"],
                ttl_seconds=form.cleaned_data["ttl_seconds"],
                source="admin",
                actor=request.user.get_username(),
            )
        except ServiceError as exc:  # a user deleted or the segment gone since the form was checked
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _added_message(segment.slug, changes, form.cleaned_data))
            return redirect("admin:segments_segment_change", segment.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Add members",
        "form": form,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/segments/membership/add_members.html", context)


def _segment_id_checked(params):
    """The parameters with `segment` emptied unless it may be an id: the autocomplete widget looks the
    value up to draw it, and a word or a number past bigint would fail that query (a 500, not a form error)."""
    params = params.copy()
    value = params.get("segment", "")
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        params["segment"] = ""
    return params


def _added_message(slug: str, changes, cleaned: dict) -> str:
    added = sum(1 for change in changes if change.added)
    kept = len(changes) - added
    if cleaned["ttl_seconds"]:
        until = f" for {cleaned['ttl']} {cleaned['ttl_unit']}"
    elif cleaned["expires_at"]:
        until = f" until {_rfc3339(cleaned['expires_at'])}"
    else:
        until = ""
    text = f"{added} user{'s' if added != 1 else ''} added to {slug}{until}."
    if kept:
        text += f" {kept} already member{'s' if kept != 1 else ''}, with this expiry now."
    return text


def export_response(segment: Segment) -> StreamingHttpResponse:
    """The segment's active members as CSV, read in keyset batches and streamed as they are read."""
    response = StreamingHttpResponse(_member_lines(segment.pk), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{segment.slug}-members.csv"'
    return response


class _Line:
    def write(self, value: str) -> str:
        return value


def _member_lines(segment_id: int) -> Iterator[str]:
    writer = csv.writer(_Line(), lineterminator="\n")
    yield writer.writerow(["user_id", "expires_at", "source", "added_at"])
    last = 0
    while True:
        rows = list(
            Membership.objects.active()
            .filter(segment_id=segment_id, user_id__gt=last)
            .order_by("user_id")
            .values_list("user_id", "expires_at", "source", "added_at")[:EXPORT_BATCH]
        )
        if not rows:
            return
        yield "".join(
            writer.writerow([user_id, _rfc3339(expires_at), source, _rfc3339(added_at)])
            for user_id, expires_at, source, added_at in rows
        )
        last = rows[-1][0]


def _rfc3339(value) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
