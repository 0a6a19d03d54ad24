"""The client's IP address, for the admin login lockout and rate limits without a token."""

from django.conf import settings


def client_ip(request) -> str:
    """REMOTE_ADDR; behind a trusted proxy (DJANGO_TRUSTED_PROXY), the last X-Forwarded-For entry,
    the one that proxy appended (earlier entries come from the client and prove nothing)."""
    if settings.DJANGO_TRUSTED_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")
