"""The list of imports, those of the API, the admin and `import_members` alike, and the imports of users'
attributes: read-only, since the worker alone writes an import (services/imports.py)."""

from datetime import UTC

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from segments.admin.lists import CappedPaginator
from segments.models import Import


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    list_display = ("id", "segment", "status_and_mode", "progress", "added", "unknown", "actor", "started")
    list_filter = ("status", "mode")
    search_fields = ("=segment_slug", "=actor")
    search_help_text = "An exact segment slug or actor (token or admin user name)."
    ordering = ("-id",)
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "segment_slug",
        "mode",
        "status",
        "progress",
        "started_by",
        "ttl",
        "register",
        "added",
        "removed",
        "already_member",
        "registered",
        "unknown_users",
        "unknown_ids",
        "invalid",
        "error",
        "started",
        "finished",
        "progress_page",
    )
    readonly_fields = fields

    @admin.display(description="segment", ordering="segment_slug")
    def segment(self, current: Import) -> str:
        return current.segment_slug if current.kind == Import.Kind.MEMBERS else "(users' attributes)"

    @admin.display(description="status (mode)", ordering="status")
    def status_and_mode(self, current: Import) -> str:
        return f"{current.status} ({current.shown_mode})"

    @admin.display(description="unknown", ordering="unknown_users")
    def unknown(self, current: Import) -> int:
        return current.unknown_users

    @admin.display(description="started (UTC)", ordering="created_at")
    def started(self, current: Import) -> str:
        return _utc(current.created_at)

    @admin.display(description="finished (UTC)")
    def finished(self, current: Import) -> str:
        return _utc(current.finished_at) if current.finished_at else "-"

    @admin.display(description="started by (API token or admin user)")
    def started_by(self, current: Import) -> str:
        return current.actor

    @admin.display(description="TTL (seconds)")
    def ttl(self, current: Import) -> str:
        return f"{current.ttl_seconds:,}" if current.ttl_seconds else "-"

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "segment_id" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="progress")
    def progress(self, current: Import) -> str:
        if current.total is None:
            return "not checked yet"
        percent = round(100 * current.done / current.total) if current.total else 100
        return f"{current.done:,}/{current.total:,} ({percent}%)"

    @admin.display(description="first unknown user ids")
    def unknown_ids(self, current: Import) -> str:
        return ", ".join(map(str, current.unknown_user_ids)) or "-"

    @admin.display(description="first invalid lines")
    def invalid(self, current: Import) -> str:
        return "; ".join(f"line {problem['line']}: {problem['error']}" for problem in current.invalid_lines) or "-"

    @admin.display(description="progress page")
    def progress_page(self, current: Import) -> str:
        if current.kind == Import.Kind.ATTRIBUTES:
            return "-"
        url = reverse("admin:segments_segment_import_progress", args=[current.segment_id, current.pk])
        return format_html('<a href="{}">Import {}: progress</a>', url, current.pk)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _utc(at) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
