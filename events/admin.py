"""Webhooks in the admin, through the services: event types are checkboxes and segments a picker (none:
all), the form is checked by `webhook_fields_check` (the API's one check), a new webhook's secret is shown
once on its own page; enable, disable and ping as the API does. Deliveries are a read-only audit log."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin import secret_shown_once
from core.errors import ServiceError, ValidationFailed
from events.models import Delivery, Webhook
from events.services import webhooks as services
from segments.errors import SegmentNotFound
from segments.models import Segment

FIELDS = ("url", "description", "event_types", "segments")


class PickedField(forms.MultipleChoiceField):
    """Choices to pick from; whatever comes is checked by `webhook_fields_check` alone, so the form refuses
    a typo with the API's words (a hand-made POST can send any value)."""

    def valid_value(self, value) -> bool:
        return True


class SegmentPicker(FilteredSelectMultiple):
    """Django's two-list picker, wrapped as the admin wraps a related field's: its script puts the lists
    first in their parent, which would be the row, before the label."""

    def render(self, *args, **kwargs):
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(*args, **kwargs))


class WebhookForm(forms.ModelForm):
    event_types = PickedField(
        required=False,
        choices=[(name, name) for name in services.EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: all event types, those added later included.",
    )
    segments = PickedField(
        required=False,
        widget=SegmentPicker("segments", is_stacked=False),
        help_text="None chosen: all segments, those made later included.",
    )

    class Meta:
        model = Webhook
        fields = (*FIELDS, "enabled")
        labels = {"url": "URL"}
        help_texts = {"enabled": "Unchecked: nothing is sent, events wait; checked again: they are sent, in order."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        slugs = list(Segment.objects.order_by("slug").values_list("slug", flat=True))
        stored = self.instance.segments if self.instance.pk else []  # a filter may name a segment deleted since
        gone = sorted(set(stored) - set(slugs))
        choices = [(slug, slug) for slug in slugs] + [(slug, f"{slug} (deleted)") for slug in gone]
        self.fields["segments"].choices = choices

    def clean(self):
        data = super().clean()
        given = {name: data[name] for name in (*FIELDS, "enabled") if name in data and name in self.fields}
        try:
            data.update(services.webhook_fields_check(**given))
        except ValidationFailed as exc:
            for name, errors in exc.extra["errors"].items():
                self.add_error(name, errors)
        except SegmentNotFound as exc:
            self.add_error("segments", exc.detail)
        return data


def _all_or(values: list[str]) -> str:
    return ", ".join(values) if values else "all"


def _deliveries_url(webhook_id) -> str:
    return f"{reverse('admin:events_delivery_changelist')}?message__webhook__id__exact={webhook_id}"


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ("id", "url", "types", "segment_filter", "enabled", "failing_since", "deliveries")
    list_display_links = ("id", "url")
    list_filter = ("enabled",)
    readonly_fields = ("failing_since", "created_at", "deliveries")
    actions = ["enable_and_replay", "disable", "send_ping"]

    class Media:
        css = {"all": ["events/admin.css"]}

    def get_fields(self, request, obj=None):
        return (*FIELDS, "enabled", "failing_since", "created_at", "deliveries") if obj else FIELDS

    @admin.display(description="event types")
    def types(self, webhook: Webhook) -> str:
        return _all_or(webhook.event_types)

    @admin.display(description="segments")
    def segment_filter(self, webhook: Webhook) -> str:
        return _all_or(webhook.segments)

    @admin.display(description="deliveries")
    def deliveries(self, webhook: Webhook) -> str:
        return format_html('<a href="{}">Deliveries</a>', _deliveries_url(webhook.pk))

    def get_urls(self):
        ping = self.admin_site.admin_view(self.ping_view)
        return [path("<int:object_id>/ping/", ping, name="events_webhook_ping"), *super().get_urls()]

    def ping_view(self, request, object_id: int):
        """The change page's "Send a ping" button: the API's POST /api/v1/webhooks/{id}/test/."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        webhook = self.get_object(request, str(object_id))
        if webhook is None:
            raise Http404(f"No webhook {object_id}.")
        if not self.has_change_permission(request, webhook):
            raise PermissionDenied
        services.webhook_ping(webhook_id=webhook.pk)
        self.message_user(request, "Ping queued: the worker sends it within seconds; its attempt shows in Deliveries.")
        return HttpResponseRedirect(reverse("admin:events_webhook_change", args=[webhook.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if object_id.isdigit():
            extra = {"ping_url": reverse("admin:events_webhook_ping", args=[object_id])}
            extra["deliveries_url"] = _deliveries_url(object_id)
        else:
            extra = {}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:  # the form was valid a moment ago (a segment deleted since): nothing saved
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_deleted_objects(self, objs, request):
        """A webhook's deliveries go with it, as with DELETE /api/v1/webhooks/{id}/, though none goes alone."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {Delivery._meta.verbose_name}, protected

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in (*FIELDS, "enabled") if name in form.fields}
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

    @admin.action(description="Disable (events are kept and sent once enabled again)", permissions=["change"])
    def disable(self, request, queryset):
        for webhook in queryset:
            services.webhook_change(webhook_id=webhook.pk, enabled=False)
        self.message_user(request, f"{queryset.count()} webhook(s) disabled.")

    @admin.action(description="Send a ping", permissions=["change"])
    def send_ping(self, request, queryset):
        for webhook in queryset:
            services.webhook_ping(webhook_id=webhook.pk)
        self.message_user(request, f"Ping queued for {queryset.count()} webhook(s).")


class WebhookFilter(admin.RelatedFieldListFilter):
    """Webhooks by id and URL: two may share a URL."""

    def field_choices(self, field, request, model_admin):
        return [(webhook.pk, f"{webhook.pk}: {webhook.url}") for webhook in Webhook.objects.order_by("pk")]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """An audit log: shown, never added, changed or deleted here; deleting a webhook deletes its own, and
    `messages_purge` those older than SEGMENTER_EVENT_RETENTION_DAYS."""

    list_display = ("at", "webhook", "attempt", "status_code", "error", "duration_ms")
    list_filter = (("message__webhook", WebhookFilter), "status_code")
    list_select_related = ("message__webhook",)
    fields = ("at", "webhook", "message_id_", "attempt", "status_code", "error", "duration_ms", "payload")
    readonly_fields = fields

    @admin.display(description="webhook", ordering="message__webhook")
    def webhook(self, delivery: Delivery) -> str:
        """Its id, linked; the URL on hover and in the filter (a column of URLs would push the status off)."""
        webhook = delivery.message.webhook
        url = reverse("admin:events_webhook_change", args=[webhook.pk])
        return format_html('<a href="{}" title="{}">{}</a>', url, webhook.url, webhook.pk)

    @admin.display(description="message (webhook-id)")
    def message_id_(self, delivery: Delivery) -> str:
        return delivery.message.msg_id

    @admin.display(description="payload")
    def payload(self, delivery: Delivery) -> str:
        try:
            body = json.dumps(json.loads(delivery.message.body), indent=2, ensure_ascii=False)
        except ValueError:
            body = delivery.message.body
        return format_html('<pre class="payload">{}</pre>', body)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
