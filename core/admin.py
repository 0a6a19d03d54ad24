"""API tokens in the admin: made with `token_create` (the token is shown once), read-only flag, revoke."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from core.auth import token_cache, token_create
from core.models import ApiToken

# What the admin's header, page titles and index call it.
admin.site.site_header = "Segmenter admin"
admin.site.site_title = "Segmenter admin"
admin.site.index_title = "Segments, users and API tokens"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "read_only", "created_at", "last_used_at")
    list_filter = ("read_only",)
    search_fields = ("name",)

    def get_fields(self, request, obj=None):
        return ("name", "read_only", "created_at", "last_used_at") if obj else ("name", "read_only")

    def get_readonly_fields(self, request, obj=None):
        return ("name", "created_at", "last_used_at") if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            token_cache.clear()  # this process sees the change at once; others within auth.CACHE_SECONDS
            return
        api_token, request.api_token_plain = token_create(name=obj.name, read_only=obj.read_only)
        obj.pk = api_token.pk

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token made",
            "api_token": obj,
            "token": request.api_token_plain,
        }
        response = TemplateResponse(request, "admin/segmenter/apitoken/token_created.html", context)
        add_never_cache_headers(response)
        return response

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        token_cache.clear()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        token_cache.clear()
