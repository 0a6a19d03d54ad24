from rest_framework.pagination import CursorPagination


class Pagination(CursorPagination):
    """Cursor pagination: `{"results", "next", "previous"}`; `page_size` up to 1000."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SlugPagination(Pagination):
    ordering = "slug"


class UserIdPagination(Pagination):
    ordering = "user_id"


class TimePagination(Pagination):
    ordering = ("at", "id")
