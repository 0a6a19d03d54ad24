"""Users in the admin: registered through the API and commands; a staff user with the right to change
attributes edits a user's attributes here, through the API's write (users/attribute_writes.py)."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.errors import ServiceError, ValidationFailed
from segments.admin.lists import CappedPaginator, user_id_search
from segments.models import Membership
from segments.services import membership_explain
from users.attribute_writes import user_attributes_get, user_attributes_write
from users.models import User


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


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


class AttributesForm(forms.Form):
    attributes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 80, "spellcheck": "false"}),
        help_text='A JSON object that replaces the user\'s attributes, e.g. {"city": "Moscow", "app_version": "6.2"}. '
        "The user is evaluated against the rule segments on saving.",
    )

    def clean_attributes(self):
        try:
            return json.loads(self.cleaned_data["attributes"])
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}.") from None


class ExplainForm(forms.Form):
    """A GET form outside the user's page form: its fields name the form (`form="explain-form"`)."""

    explain = forms.CharField(label="Segment", max_length=100, widget=forms.TextInput(attrs={"form": "explain-form"}))


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at")
    fields = ("id", "created_at", "attributes_shown")
    readonly_fields = fields
    search_fields = ("id",)
    search_help_text = "An exact user id."
    inlines = [MembershipInline]
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count whole tables

    @admin.display(description="attributes")
    def attributes_shown(self, user: User) -> str:
        attributes, updated_at = user_attributes_get(user_id=user.pk)
        written = f"written {updated_at:%Y-%m-%d %H:%M:%S} UTC" if updated_at else "never written"
        return format_html('<pre id="user-attributes">{}</pre>{}', _pretty(attributes), written)

    def get_search_results(self, request, queryset, search_term):
        return user_id_search(queryset, search_term, "id"), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _may_write_attributes(self, request) -> bool:
        return request.user.has_perm("users.change_userattributes")

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/attributes/",
                self.admin_site.admin_view(self.attributes_view),
                name="users_user_attributes",
            )
        ]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The user's page; with `?explain=SLUG` also why the user is, or is not, in that segment."""
        user = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if user is not None:
            explain_form = ExplainForm(request.GET if "explain" in request.GET else None)
            explanation = None
            if explain_form.is_valid():
                try:
                    explanation = membership_explain(user_id=user.pk, slug=explain_form.cleaned_data["explain"])
                except ServiceError as exc:  # no such segment
                    explain_form.add_error("explain", exc.detail)
            extra_context |= {
                "explain_form": explain_form,
                "explanation": explanation,
                "attributes_url": reverse("admin:users_user_attributes", args=[user.pk])
                if self._may_write_attributes(request)
                else None,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def attributes_view(self, request, object_id):
        """Replace the user's attributes (as the API's PUT); the rule segments entered and left in the message."""
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user")
        if not self._may_write_attributes(request):
            raise PermissionDenied
        if request.method == "POST":
            form = AttributesForm(request.POST)
            if form.is_valid():
                try:
                    written = user_attributes_write(
                        user_id=user.pk,
                        attributes=form.cleaned_data["attributes"],
                        merge=False,
                        register=False,
                        actor=request.user.get_username(),
                    )
                except ValidationFailed as exc:
                    errors = exc.extra["errors"]
                    form.add_error(
                        "attributes", [f"{at}: {message}" for at, texts in errors.items() for message in texts]
                    )
                except ServiceError as exc:  # the user deleted meanwhile
                    form.add_error(None, exc.detail)
                else:
                    messages.success(request, _written_message(user.pk, written))
                    return redirect("admin:users_user_change", user.pk)
        else:
            form = AttributesForm(initial={"attributes": _pretty(user_attributes_get(user_id=user.pk)[0])})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Attributes of user {user.pk}",
            "original": user,
            "form": form,
        }
        return TemplateResponse(request, "admin/users/user/attributes.html", context)


def _written_message(user_id: int, written) -> str:
    entered, left = written.entered.get(user_id, []), written.left.get(user_id, [])
    text = f"Attributes of user {user_id} saved."
    text += f" Entered: {', '.join(entered)}." if entered else " Entered no segment."
    text += f" Left: {', '.join(left)}." if left else " Left no segment."
    return text
