"""The admin for product managers. Every change goes through the services: history gets
source `admin` (or `rollout`, `segment_deleted`, `import`) and the admin user's name as actor."""

from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.urls import path, reverse

from segments.admin import imports as _imports  # noqa: F401 (registers ImportAdmin)
from segments.admin import views as admin_views
from segments.admin.charts import members_by_day, members_chart_svg
from segments.admin.forms import MembershipForm, SegmentForm
from segments.admin.lists import (
    MEMBER_COUNT_CAP,
    CappedPaginator,
    PeriodsQuerySet,
    active_member_count,
    user_id_search,
    with_capped_member_counts,
)
from segments.models import HistoryEvent, Membership, Segment
from segments.rules import rule_text
from segments.services import AddItem, memberships_update, rollout_apply, segment_create, segment_delete, segment_update


def _actor(request) -> str:
    return request.user.get_username()


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    fields = ("slug", "description", "rollout_percent", "rule", "rule_as_text")
    readonly_fields = ("rule_as_text",)
    list_display = ("slug", "short_description", "rule_as_text", "rollout_percent", "member_count", "created_at")
    search_fields = ("slug", "description")
    ordering = ("slug",)
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count whole tables

    def get_queryset(self, request):
        return with_capped_member_counts(super().get_queryset(request))

    @admin.display(description="description")
    def short_description(self, segment: Segment) -> str:
        return segment.description if len(segment.description) <= 80 else segment.description[:79] + "…"

    @admin.display(description="rule as text")
    def rule_as_text(self, segment: Segment) -> str:
        return "—" if segment.rule is None else rule_text(segment.rule)

    @admin.display(description="active members")
    def member_count(self, segment: Segment) -> int | str:
        if segment.member_rows > MEMBER_COUNT_CAP:
            return f"{MEMBER_COUNT_CAP}+"
        return segment.member_rows - segment.member_due

    def get_readonly_fields(self, request, obj=None):
        return ("slug", "rule_as_text") if obj else ("rule_as_text",)

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/import/", self.admin_site.admin_view(self.import_view), name="segments_segment_import"
            ),
            path(
                "<path:object_id>/imports/<int:import_id>/",
                self.admin_site.admin_view(self.import_progress_view),
                name="segments_segment_import_progress",
            ),
            path(
                "<path:object_id>/export/", self.admin_site.admin_view(self.export_view), name="segments_segment_export"
            ),
        ]
        return own + super().get_urls()

    def _segment_or_404(self, request, object_id) -> Segment:
        segment = self.get_object(request, unquote(object_id))
        if segment is None:
            raise Http404("No such segment")
        return segment

    def import_view(self, request, object_id):
        segment = self._segment_or_404(request, object_id)
        if not self.has_change_permission(request, segment):
            raise PermissionDenied
        return admin_views.import_view(self, request, segment)

    def import_progress_view(self, request, object_id, import_id):
        segment = self._segment_or_404(request, object_id)
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        return admin_views.import_progress_view(self, request, segment, import_id)

    def export_view(self, request, object_id):
        segment = self._segment_or_404(request, object_id)
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        return admin_views.export_response(segment)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_rollout_confirmed" not in request.POST:
            confirmation = self._change_confirmation(request, object_id)
            if confirmation is not None:
                return confirmation
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _change_confirmation(self, request, object_id):
        """The confirmation page when a valid form changes the rule or the rollout percent; None otherwise."""
        segment = self.get_object(request, unquote(object_id)) if object_id else None
        allowed = self.has_change_permission(request, segment) if segment else self.has_add_permission(request)
        if (object_id and segment is None) or not allowed:
            return None
        current = segment.rollout_percent if segment else Decimal(0)  # before the form writes to the instance
        current_rule = segment.rule if segment else None
        form = self.get_form(request, segment, change=segment is not None)(request.POST, instance=segment)
        if not form.is_valid():
            return None
        percent, rule = form.cleaned_data["rollout_percent"], form.cleaned_data["rule"]
        slug = segment.slug if segment else form.cleaned_data["slug"]
        if rule != current_rule:
            return admin_views.rule_confirm_response(
                self, request, segment=segment, slug=slug, rule=rule, percent=None if percent == current else percent
            )
        if percent == current:
            return None
        return admin_views.rollout_confirm_response(
            self, request, segment=segment, slug=slug, current=current, percent=percent
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        segment = self.get_object(request, unquote(object_id)) if request.method == "GET" else None
        if segment is not None:
            membership_list = reverse("admin:segments_membership_changelist")
            extra_context = {
                **(extra_context or {}),
                "member_count": active_member_count([segment.pk]),
                "members_chart": members_chart_svg(members_by_day(segment)),
                "members_url": f"{membership_list}?segment__id__exact={segment.pk}",
                "add_member_url": f"{reverse('admin:segments_membership_add')}?segment={segment.pk}",
                "history_url": f"{reverse('admin:segments_historyevent_changelist')}?q={segment.slug}",
                "import_url": reverse("admin:segments_segment_import", args=[segment.pk]),
                "imports_url": f"{reverse('admin:segments_import_changelist')}?segment_id={segment.pk}",
                "export_url": reverse("admin:segments_segment_export", args=[segment.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        actor, percent, rule = _actor(request), form.cleaned_data["rollout_percent"], form.cleaned_data["rule"]
        before = Segment.objects.get(pk=obj.pk) if change else Segment(rollout_percent=Decimal(0))
        if rule != before.rule:
            self._rule_save(request, obj, rule=rule, percent=None if percent == before.rollout_percent else percent)
            return
        with transaction.atomic():
            if change:
                segment = segment_update(slug=obj.slug, description=obj.description, actor=actor)
            else:
                segment = segment_create(slug=obj.slug, description=obj.description, actor=actor)
            result = None
            if percent != segment.rollout_percent:
                result = rollout_apply(slug=segment.slug, percent=percent, actor=actor)
        obj.pk, obj.created_at, obj.rollout_percent = segment.pk, segment.created_at, percent
        if result is not None:
            self.message_user(
                request, f"Rollout {result.percent}%: {result.added} users added, {result.removed} removed."
            )

    def _rule_save(self, request, obj, *, rule: dict | None, percent: Decimal | None) -> None:
        """A rule set, changed or cleared (with the percent if changed too): one call of the segment service,
        which applies it to the automatic members."""
        actor, service = _actor(request), segment_update if obj.pk else segment_create
        segment = service(slug=obj.slug, description=obj.description, rule=rule, rollout_percent=percent, actor=actor)
        obj.pk, obj.created_at, obj.rollout_percent, obj.rule = (
            segment.pk,
            segment.created_at,
            segment.rollout_percent,
            segment.rule,
        )
        text = "cleared" if rule is None else f"saved: {rule_text(rule)}"
        self.message_user(request, f"Rule {text} (rollout {segment.rollout_percent}%).")

    def get_deleted_objects(self, objs, request):
        """No walk over related rows (a segment may have millions): the summary counts them."""
        objs = list(objs)
        count = active_member_count([obj.pk for obj in objs])
        return [f"Segment: {obj}" for obj in objs], {"segments": len(objs), "active memberships": count}, set(), []

    def delete_model(self, request, obj):
        segment_delete(slug=obj.slug, actor=_actor(request))

    def delete_queryset(self, request, queryset):
        for slug in queryset.values_list("slug", flat=True):
            segment_delete(slug=slug, actor=_actor(request))


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user_id", "segment", "source", "added_at", "expires_at")
    list_filter = ("segment", "source")
    list_select_related = ("segment",)
    raw_id_fields = ("user",)
    autocomplete_fields = ("segment",)
    search_fields = ("user_id",)
    search_help_text = "An exact user id."
    ordering = ("user_id", "segment_id")
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count whole tables

    def get_search_results(self, request, queryset, search_term):
        return user_id_search(queryset, search_term, "user_id"), False

    def get_readonly_fields(self, request, obj=None):
        return ("user", "segment", "source", "added_at") if obj else ()

    def add_view(self, request, form_url="", extra_context=None):
        """Many users at once (MembersAddForm), then back to the segment's page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        return admin_views.members_add_view(self, request)

    def save_model(self, request, obj, form, change):
        item = AddItem(slug=obj.segment.slug, expires_at=obj.expires_at)
        memberships_update(user_id=obj.user_id, add=[item], remove=[], source="admin", actor=_actor(request))
        obj.pk = (
            Membership.objects.filter(user_id=obj.user_id, segment_id=obj.segment_id).values_list("pk", flat=True).get()
        )

    def delete_model(self, request, obj):
        memberships_update(
            user_id=obj.user_id, add=[], remove=[obj.segment.slug], source="admin", actor=_actor(request)
        )

    def delete_queryset(self, request, queryset):
        # One service call per selected row: a page holds at most `list_per_page` rows.
        for user_id, slug in queryset.values_list("user_id", "segment__slug"):
            memberships_update(user_id=user_id, add=[], remove=[slug], source="admin", actor=_actor(request))


@admin.register(HistoryEvent)
class HistoryEventAdmin(admin.ModelAdmin):
    list_display = ("at", "user_id", "segment_slug", "operation", "source", "actor")
    list_filter = ("operation", "source")
    date_hierarchy = "at"
    search_fields = ("segment_slug",)
    search_help_text = "An exact user id or segment slug."
    ordering = ("-at", "-id")
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count whole tables

    def get_queryset(self, request):
        return PeriodsQuerySet(self.model, using=self.model.objects.db).order_by(*self.get_ordering(request))

    def get_search_results(self, request, queryset, search_term):
        return user_id_search(queryset, search_term, "user_id", slug_field="segment_slug"), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
