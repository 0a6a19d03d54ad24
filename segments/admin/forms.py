"""Forms of the segments admin: they check input; the services make the changes."""

import json
import re

from django import forms
from django.contrib.admin import widgets
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from core.errors import ValidationFailed
from core.fields import MAX_USER_ID
from segments.fields import SLUG_RE
from segments.models import Membership, Segment
from segments.rules import rule_compile
from segments.selectors import MAX_BATCH_USER_IDS, users_segment_slugs
from segments.services.imports import MODES
from segments.services.memberships import MAX_TTL_SECONDS, expiry_problem


def checked_expiry(expires_at):
    """An expiry from a form: none, or one the services take (expiry_problem), else a form error."""
    if expires_at is not None and (problem := expiry_problem(expires_at, not_before=timezone.now())):
        raise forms.ValidationError(f"The expiry {problem}.")
    return expires_at


class SegmentForm(forms.ModelForm):
    rollout_percent = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        initial=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="0-100, at most two decimals. Users are picked by a sticky hash of slug and user id; "
        "a change is confirmed on the next page with the number of users it adds and removes.",
    )

    rule = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "spellcheck": "false"}),
        help_text='Empty: no rule. Otherwise a condition tree as JSON, e.g. {"all": [{"attribute": "city", '
        '"op": "in", "value": ["Moscow"]}, {"attribute": "app_version", "op": "version_gte", "value": "6.2"}]}. '
        "A rule set on a segment at 0% makes it 100% unless the percent is changed too; a change is confirmed "
        "on the next page with the users it matches, adds and removes.",
    )

    class Meta:
        model = Segment
        fields = ["slug", "description", "rollout_percent"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.rule is not None:
            self.initial["rule"] = json.dumps(self.instance.rule, indent=2, ensure_ascii=False)

    def clean_rule(self) -> dict | None:
        """The rule as JSON, checked by the rule compiler: each bad node's error names its path."""
        text = self.cleaned_data["rule"].strip()
        if not text:
            return None
        try:
            rule = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}.") from None
        try:
            rule_compile(rule=rule)
        except ValidationFailed as exc:
            errors = exc.extra["errors"]
            raise forms.ValidationError(
                [f"{path}: {message}" for path, messages in errors.items() for message in messages]
            )
        return rule

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if not SLUG_RE.fullmatch(slug):
            raise forms.ValidationError("1-100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit.")
        return slug


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "segment", "expires_at"]
        help_texts = {"expires_at": "Empty: a member until removed. Otherwise the membership ends at this time (UTC)."}

    def clean_expires_at(self):
        return checked_expiry(self.cleaned_data["expires_at"])


MAX_ADD_IDS = MAX_BATCH_USER_IDS  # one service call each; a bigger list is an import's
TTL_UNITS = {"hours": 3600, "days": 86400}
_ID_SEPARATORS = re.compile(r"[\s,;]+")


class MembersAddForm(forms.Form):
    """Many users into one segment: forever, for a TTL in hours or days, or until a time."""

    segment = forms.ModelChoiceField(queryset=Segment.objects.order_by("slug"))
    user_ids = forms.CharField(
        label="User ids",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        help_text=f"Up to {MAX_ADD_IDS:,} registered user ids, separated by spaces, commas or new lines. "
        "For more, use Import CSV on the segment's page.",
    )
    ttl = forms.IntegerField(required=False, min_value=1, label="TTL", help_text="Optional: members for this long")
    ttl_unit = forms.ChoiceField(choices=[(unit, unit) for unit in TTL_UNITS], initial="days", label="TTL unit")
    expires_at = forms.SplitDateTimeField(
        required=False,
        widget=widgets.AdminSplitDateTime,
        label="Or until",
        help_text="Optional, instead of a TTL: the membership ends at this time (UTC). Neither: until removed.",
    )

    def __init__(self, *args, segment_widget=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if segment_widget is not None:
            segment_widget.choices = self.fields["segment"].choices
            self.fields["segment"].widget = segment_widget

    def clean_user_ids(self) -> list[int]:
        words = [word for word in _ID_SEPARATORS.split(self.cleaned_data["user_ids"]) if word]
        bad = [word for word in words if not (word.isascii() and word.isdigit() and 1 <= int(word) <= MAX_USER_ID)]
        if bad:
            raise forms.ValidationError([f"Not a user id: {word[:40]!r}." for word in bad[:20]])
        ids = list(dict.fromkeys(int(word) for word in words))
        if not ids:
            raise forms.ValidationError("Give at least one user id.")
        if len(ids) > MAX_ADD_IDS:
            raise forms.ValidationError(f"At most {MAX_ADD_IDS:,} user ids at once; use Import CSV for more.")
        unknown = users_segment_slugs(ids)[1]  # the batch lookup's unknown ids, in the order given
        if unknown:
            raise forms.ValidationError(
                [f"User {user_id} is not registered; nothing was added." for user_id in unknown[:20]]
                + ([f"… and {len(unknown) - 20} more unknown users."] if len(unknown) > 20 else [])
            )
        return ids

    def clean_expires_at(self):
        return checked_expiry(self.cleaned_data["expires_at"])

    def clean(self):
        cleaned = super().clean()
        ttl, unit = cleaned.get("ttl"), cleaned.get("ttl_unit")
        cleaned["ttl_seconds"] = ttl * TTL_UNITS[unit] if ttl and unit else None
        if cleaned["ttl_seconds"] and cleaned.get("expires_at"):
            self.add_error("ttl", "Give a TTL or an expiry, not both.")
        elif cleaned["ttl_seconds"] and cleaned["ttl_seconds"] > MAX_TTL_SECONDS:
            self.add_error("ttl", f"At most {MAX_TTL_SECONDS // 86400:,} days.")
        return cleaned


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="CSV, one user id per line, optionally followed by ,expires_at (RFC 3339, "
        "e.g. 2030-01-01T00:00:00Z); an optional header line naming the columns. A member export "
        "(Export CSV) and a history report import as they are: only user_id and expires_at are read."
    )
    mode = forms.ChoiceField(
        choices=[(mode, mode) for mode in MODES],
        initial="add",
        widget=forms.RadioSelect,
        help_text="Add the listed users, remove them, or make them the segment's only manual members "
        "(replace; rollout members stay).",
    )
    ttl_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TTL_SECONDS,
        label="TTL (seconds)",
        help_text="Optional: added users leave after this many seconds, unless their line gives an expires_at.",
    )
    register = forms.BooleanField(
        required=False,
        label="Register unknown users",
        help_text="Register the listed users who are not registered yet (add and replace); otherwise they are skipped.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("register") and cleaned.get("mode") == "remove":
            self.add_error("register", "Only with add or replace: remove registers nobody.")
        return cleaned
