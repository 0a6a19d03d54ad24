import re

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from core.fields import MAX_USER_ID


class Pagination(CursorPagination):
    """Cursor pagination: `{"results", "next", "previous"}`; `page_size` up to 1000."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """A cursor is client input: a position the ordering column cannot hold is a 404, not a 500."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not self.position_valid(cursor.position):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def position_valid(self, position: str) -> bool:
        return "\x00" not in position


class SlugPagination(Pagination):
    ordering = "slug"


class UserIdPagination(Pagination):
    ordering = "user_id"

    def position_valid(self, position: str) -> bool:
        return re.fullmatch(r"[0-9]{1,19}", position) is not None and int(position) <= MAX_USER_ID


class TimePagination(Pagination):
    ordering = ("at", "id")

    def position_valid(self, position: str) -> bool:
        try:
            return parse_datetime(position) is not None
        except ValueError:
            return False
