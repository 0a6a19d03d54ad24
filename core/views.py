"""Operational endpoints and the problem+json answers for paths outside the API's views."""

from django.db import connection
from django.db.utils import DatabaseError
from django.views.defaults import bad_request as default_bad_request
from django.views.defaults import page_not_found, server_error
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core import replica
from core.errors import problem_json_response, problem_response
from core.serializers import ProblemSerializer

# Methods no route answers: OPTIONS and TRACE are 405 everywhere (API.md: HEAD is GET without a body, anything
# else 405), so a route's Allow header, which lists the methods it answers, never names them.
REFUSED_METHODS = ("options", "trace")


def answered_methods(view_class) -> list[str]:
    """The view's `http_method_names` without REFUSED_METHODS: what Allow lists and dispatch runs."""
    return [method for method in view_class.http_method_names if method not in REFUSED_METHODS]


def served(view_class, **initkwargs):
    """`view_class.as_view(**initkwargs)` answering its methods but REFUSED_METHODS (405, and not in Allow)."""
    return view_class.as_view(http_method_names=answered_methods(view_class), **initkwargs)


@extend_schema(
    summary="Health: is the service up and its database reachable",
    responses={
        200: inline_serializer(
            "Health",
            {
                "status": serializers.CharField(),
                "database": serializers.CharField(),
                "replica": serializers.ChoiceField(
                    ["ok", "lagging", "down"], required=False, help_text="Only with DATABASE_REPLICA_URL"
                ),
            },
        ),
        503: ProblemSerializer,
    },
    auth=[],
)
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return problem_response(
            503, "service_unavailable", "Service unavailable", "The database cannot be reached.", database="unavailable"
        )
    state = replica.status()
    return Response({"status": "ok", "database": "ok", **({"replica": state} if state else {})})


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_json_response(400, "bad_request", "Bad request", "The request was refused (bad Host header?).")
    return default_bad_request(request, exception)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_json_response(404, "not_found", "Not found", f"No such path: {request.path[:200]}")
    return page_not_found(request, exception)


def internal_error(request):
    if request.path.startswith("/api/"):
        return problem_json_response(500, "internal_error", "Internal server error", "An unexpected error occurred.")
    return server_error(request)
