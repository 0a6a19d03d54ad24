"""Bearer-token authentication for the API, with an in-process cache so the hot path needs no query."""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models.functions import Now
from rest_framework import authentication, exceptions, permissions

from core.models import ApiToken

CACHE_SECONDS = 30  # a revoked token stops working within this many seconds
LAST_USED_EVERY_SECONDS = 60  # last_used_at is written at most this often per token and process


@dataclass(frozen=True)
class Client:
    """The caller behind a token; DRF's `request.user`."""

    token_id: int | None
    name: str
    read_only: bool
    is_authenticated: bool = True


ANONYMOUS = Client(token_id=None, name="anonymous", read_only=False)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when the header is not of that form."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


def token_create(*, name: str, read_only: bool = False) -> tuple[ApiToken, str]:
    """Make a token; the plain token is returned once and never stored."""
    token = "sgm_" + secrets.token_urlsafe(32)
    api_token = ApiToken.objects.create(name=name, key_hash=token_hash(token), read_only=read_only)
    return api_token, token


class _TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Client | None, float]] = {}
        self._last_used_written: dict[int, float] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._last_used_written.clear()

    def lookup(self, digest: str) -> Client | None:
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is None or entry[1] < now:
            row = ApiToken.objects.filter(key_hash=digest).values_list("id", "name", "read_only", "key_hash").first()
            client = None
            # The row was found by its hash; compare again in constant time all the same.
            if row is not None and hmac.compare_digest(row[3], digest):
                client = Client(token_id=row[0], name=row[1], read_only=row[2])
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[digest] = (client, now + CACHE_SECONDS)
            entry = (client, 0)
        client = entry[0]
        if client is not None and self._last_used_written.get(client.token_id, 0) < now - LAST_USED_EVERY_SECONDS:
            self._last_used_written[client.token_id] = now
            ApiToken.objects.filter(pk=client.token_id).update(last_used_at=Now())
        return client


token_cache = _TokenCache()


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        if not settings.SEGMENTER_AUTH:
            return (ANONYMOUS, None)
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        token = bearer_token(header)
        if token is None:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        client = token_cache.lookup(token_hash(token))
        if client is None:
            raise exceptions.AuthenticationFailed("Unknown API token.")
        return (client, client.token_id)

    def authenticate_header(self, request) -> str:
        return self.keyword


class TokenPermission(permissions.BasePermission):
    """Any token may read; writing needs a token that is not read-only.

    A view may set `read_only_safe_methods` to add methods that only read (a report request).
    """

    def has_permission(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, Client):
            raise exceptions.NotAuthenticated("An API token is required: 'Authorization: Bearer <token>'.")
        safe = set(permissions.SAFE_METHODS) | set(getattr(view, "read_only_safe_methods", ()))
        if client.read_only and request.method not in safe:
            raise exceptions.PermissionDenied("This API token is read-only.")
        return True


def actor_of(request) -> str:
    client = request.user
    return client.name if isinstance(client, Client) else "anonymous"
