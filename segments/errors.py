"""Refusals of segments, memberships and imports (core/errors.py turns them into problem+json)."""

import logging

from django.db import DatabaseError

from core.errors import ServiceError
from segments.selectors import slugs_differing_in_case

logger = logging.getLogger(__name__)


class SegmentNotFound(ServiceError):
    status, code, title = 404, "segment_not_found", "Segment not found"

    def __init__(self, slugs: list[str], matches: dict[str, str] | None = None) -> None:
        slugs = sorted(set(slugs))
        self.matches = matches or {}
        named = (f"{slug} (did you mean `{self.matches[slug]}`?)" if slug in self.matches else slug for slug in slugs)
        super().__init__(f"Unknown segments: {', '.join(named)}", slugs=slugs)

    def with_hints(self) -> "SegmentNotFound":
        """This refusal, naming the segments whose slugs differ from the unknown ones only in case (read once the
        request has failed), so that a refusal names `AVITO_DISCOUNT_30` for `avito_discount_30` wherever it was
        raised."""
        if self.matches:
            return self
        try:
            matches = slugs_differing_in_case(self.extra["slugs"])
        except DatabaseError:  # only a hint: the 404 stands without it
            logger.warning("segment slugs not compared: the database is unavailable")
            return self
        return SegmentNotFound(self.extra["slugs"], matches) if matches else self


class SegmentExists(ServiceError):
    status, code, title = 409, "segment_exists", "Segment exists"

    def __init__(self, slug: str) -> None:
        super().__init__(f"Segment already exists: {slug}", slug=slug)


class IdempotencyKeyReused(ServiceError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request; use a new key for a new request.", key=key
        )


class ImportQueueFull(ServiceError):
    status, code, title = 503, "import_queue_full", "Import queue full"

    def __init__(self, *, max_bytes: int, retry_after: int) -> None:
        super().__init__(
            f"The imports waiting for the worker hold up to {max_bytes:,} bytes, and this one would pass that;"
            " retry later.",
            max_bytes=max_bytes,
        )
        self.headers = {"Retry-After": str(retry_after)}


class ExclusionNotFound(ServiceError):
    status, code, title = 404, "not_found", "Not found"

    def __init__(self, slug: str, user_id: int) -> None:
        super().__init__(f"User {user_id} is not excluded from {slug}.")
