"""Forms of the segments admin: they check input; the services make the changes."""

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from core.fields import SLUG_RE
from segments.models import Membership, Segment
from segments.services.imports import MODES
from segments.services.memberships import MAX_TTL_SECONDS, expiry_problem


class SegmentForm(forms.ModelForm):
    rollout_percent = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        initial=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="0-100, at most two decimals. Users are picked by a sticky hash of slug and user id; "
        "a change is confirmed on the next page with the number of users it adds and removes.",
    )

    class Meta:
        model = Segment
        fields = ["slug", "description", "rollout_percent"]

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
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and (problem := expiry_problem(expires_at, not_before=timezone.now())):
            raise forms.ValidationError(f"The expiry {problem}.")
        return expires_at


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="CSV, one user id per line, optionally followed by ,expires_at (RFC 3339, "
        "e.g. 2030-01-01T00:00:00Z); an optional first line user_id[,expires_at]."
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
