"""Users in the admin: read-only (users are registered through the API and commands)."""

from django.contrib import admin

from segments.admin.lists import CappedPaginator, user_id_search
from segments.models import Membership
from users.models import User


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("segment", "source", "added_at", "expires_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "active memberships"

    def get_queryset(self, request):
        return super().get_queryset(request).active().select_related("segment").order_by("segment__slug")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at")
    fields = ("id", "created_at")
    readonly_fields = fields
    search_fields = ("id",)
    search_help_text = "An exact user id."
    inlines = [MembershipInline]
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count whole tables

    def get_search_results(self, request, queryset, search_term):
        return user_id_search(queryset, search_term, "id"), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
