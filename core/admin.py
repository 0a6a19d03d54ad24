"""API tokens in the admin: made with `token_create` (the token is shown once), read-only flag, revoke. And
the libraries' admins, re-registered so that each action needs the permission its effect implies."""

import functools

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from procrastinate.contrib.django.admin import ProcrastinateJobAdmin
from procrastinate.contrib.django.models import ProcrastinateJob

from core.auth import token_cache, token_create
from core.models import ApiToken


def secret_shown_once(model_admin, request, obj, *, made: str, what: str, secret: str, usage: str, hashed=False):
    """The page after an add that made a secret (an API token, a webhook's signing secret): shown this once,
    not cached. Never in a message: Django's messages cookie is signed, not encrypted, so whoever sees the
    cookie (a proxy's log, the browser's storage) would read the secret."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"{capfirst(model_admin.opts.verbose_name)} made",
        "object": obj,
        "made": made,
        "what": what,
        "secret": secret,
        "hashed": hashed,
        "usage": usage,
    }
    response = TemplateResponse(request, "admin/segmenter/secret_shown_once.html", context)
    add_never_cache_headers(response)
    return response


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
        kind = "read-only" if obj.read_only else "read-write"
        return secret_shown_once(
            self,
            request,
            obj,
            made=f"The {kind} API token “{obj.name}” is made.",
            what="it",
            secret=request.api_token_plain,
            hashed=True,
            usage=mark_safe("Use it as <code>Authorization: Bearer &lt;token&gt;</code>."),
        )

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        token_cache.clear()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        token_cache.clear()


def _action_needing(permission: str, action):
    """A library's admin action, offered only to users with `permission` (Django runs
    `has_<permission>_permission`); the library declares none, so a user who may only view could run it."""

    @functools.wraps(action)
    def needing(model_admin, request, queryset):
        return action(model_admin, request, queryset)

    needing.allowed_permissions = (permission,)
    return needing


class JobAdmin(ProcrastinateJobAdmin):
    """Retry, cancel and abort change jobs: they need the change permission on jobs. The library's admin
    answers no to `has_change_permission` for everyone (its forms are read-only), so the actions ask the
    user's own permission."""

    actions = [_action_needing("run_jobs", action) for action in ProcrastinateJobAdmin.actions]

    def has_run_jobs_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")


class LoginAttemptAdmin(AccessAttemptAdmin):
    """Without the library's "clean up expired attempts": it failed on every request (it reads an attribute
    only a login request carries) and needed no permission. Deleting attempts (delete permission) or
    `manage.py axes_reset` lifts lockouts."""

    actions = ()


admin.site.unregister(ProcrastinateJob)
admin.site.register(ProcrastinateJob, JobAdmin)
admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, LoginAttemptAdmin)
