"""Per-token request rates (DRF throttles), counted in the shared cache so that every server
process sees the same count. The rates are settings read at each request."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from core.auth import Client
from core.client_ip import client_ip


class TokenRateThrottle(SimpleRateThrottle):
    """Counts requests per API token (per client address when token checks are off)."""

    setting = ""

    def get_rate(self) -> str | None:
        return getattr(settings, self.setting)

    def get_cache_key(self, request, view) -> str:
        client = request.user
        token_id = client.token_id if isinstance(client, Client) else None
        ident = f"token-{token_id}" if token_id is not None else client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ReportThrottle(TokenRateThrottle):
    """Report requests: each one reads a period of history and may write a file."""

    scope = "reports"
    setting = "SEGMENTER_REPORT_RATE"


class WriteThrottle(TokenRateThrottle):
    """Writes, only when SEGMENTER_WRITE_RATE is set; reads are never counted here."""

    scope = "writes"
    setting = "SEGMENTER_WRITE_RATE"

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS or request.method in getattr(view, "read_only_safe_methods", ()):
            return True
        return super().allow_request(request, view)
