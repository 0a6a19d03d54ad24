"""Webhooks in the admin, through the services: the form is checked by `webhook_fields_check` (the API's one
check), and a new webhook's secret is shown once on its own page."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from core.admin import secret_shown_once
from core.errors import SegmentNotFound, ServiceError, ValidationFailed
from events.models import Delivery, Webhook
from events.services import webhooks as services

FIELDS = ("url", "description", "event_types", "segments")


class WebhookForm(forms.ModelForm):
    event_types = forms.JSONField(
        required=False,
        help_text=f'A JSON list, e.g. ["membership.added"]; of {", ".join(services.EVENT_TYPES)}. Empty or []: all.',
    )
    segments = forms.JSONField(required=False, help_text='A JSON list of segment slugs, e.g. ["S1"]. Empty or []: all.')

    class Meta:
        model = Webhook
        fields = FIELDS

    def clean(self):
        data = super().clean()
        given = {name: data[name] for name in FIELDS if name in data}
        for name in ("event_types", "segments"):
            if name in given and given[name] is None:  # left empty: all
                given[name] = []
        try:
            data.update(services.webhook_fields_check(**given))
        except ValidationFailed as exc:
            for name, errors in exc.extra["errors"].items():
                self.add_error(name, errors)
        except SegmentNotFound as exc:
            self.add_error("segments", exc.detail)
        return data


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ("id", "url", "enabled", "failing_since", "created_at")
    list_filter = ("enabled",)
    fields = (*FIELDS, "enabled", "failing_since", "created_at")
    readonly_fields = ("enabled", "failing_since", "created_at")
    actions = ["enable_and_replay", "send_ping"]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:  # the form was valid a moment ago (a segment deleted since): nothing saved
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in FIELDS}
        if change:
            services.webhook_change(webhook_id=obj.pk, **data)
        else:
            created = services.webhook_create(**data)
            obj.pk, request.webhook_secret = created.pk, created.secret

    def response_add(self, request, obj, post_url_continue=None):
        return secret_shown_once(
            self,
            request,
            obj,
            made=f"Webhook {obj.pk} to {obj.url} is made.",
            what="its signing secret",
            secret=request.webhook_secret,
            usage="The receiver checks each message's webhook-signature header with it (Standard Webhooks).",
        )

    @admin.action(description="Enable and replay undelivered events", permissions=["change"])
    def enable_and_replay(self, request, queryset):
        for webhook in queryset:
            services.webhook_change(webhook_id=webhook.pk, enabled=True)
        self.message_user(request, f"{queryset.count()} webhook(s) enabled; undelivered events are sent again.")

    @admin.action(description="Send a ping", permissions=["change"])
    def send_ping(self, request, queryset):
        for webhook in queryset:
            services.webhook_ping(webhook_id=webhook.pk)
        self.message_user(request, f"Ping queued for {queryset.count()} webhook(s).")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("at", "message", "attempt", "status_code", "error", "duration_ms")
    list_select_related = ("message",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
