from django.contrib import admin, messages

from events.models import Delivery, Webhook
from events.services import webhooks as services


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "enabled", "failing_since", "created_at")
    list_filter = ("enabled",)
    fields = ("url", "description", "event_types", "segments", "enabled", "failing_since", "created_at")
    readonly_fields = ("enabled", "failing_since", "created_at")
    actions = ["enable_and_replay", "send_ping"]

    def save_model(self, request, obj, form, change):
        """Through the services: the URL is checked and a new webhook's secret is shown once."""
        data = {name: form.cleaned_data[name] for name in ("url", "description", "event_types", "segments")}
        try:
            if change:
                services.webhook_change(webhook_id=obj.pk, **data)
            else:
                created = services.webhook_create(**data)
                obj.pk = created.pk
                self.message_user(request, f"Secret of webhook {created.pk} (shown only now): {created.secret}")
        except services.ValidationFailed as exc:
            self.message_user(request, exc.detail, messages.ERROR)

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
