"""Report endpoints: a CSV streamed in the response, report files in storage, and their download."""

from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import problem_json_response
from core.pagination import TimePagination
from core.serializers import problems, request_example, validated
from reports import services
from reports.export import HistoryQuery
from reports.serializers import (
    HistoryCsvQuerySerializer,
    HistoryEventSerializer,
    PeriodQuerySerializer,
    ReportRequestSerializer,
    ReportSerializer,
)
from reports.throttles import ReportThrottle
from users.views import USER_ID_PARAM, user_id_from

CSV_TYPE = "text/csv; charset=utf-8"


class FirstRenderer(BaseContentNegotiation):
    """Errors are always problem+json, whatever the Accept header asks for (say, text/csv)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def query_of(data: dict) -> HistoryQuery:
    return HistoryQuery(period=data["period"], user_id=data.get("user_id"), segment=data.get("segment"))


def report_url(request, report: services.ReportFile) -> str:
    return request.build_absolute_uri(reverse("report-file", kwargs={"name": report.name}))


# `/api/v1/users/{id}/history/` is served here, beside the other history reads: users/ knows nothing of reports.
class UserHistoryView(GenericAPIView):
    pagination_class = TimePagination

    @extend_schema(
        operation_id="v1_users_history_retrieve",
        summary="The user's history events of a period, oldest first",
        parameters=[USER_ID_PARAM, PeriodQuerySerializer],
        responses={200: HistoryEventSerializer(many=True), **problems(400, 401, 404)},
    )
    def get(self, request, user_id):
        user_id = user_id_from(self.kwargs)
        period = validated(PeriodQuerySerializer, request.query_params)["period"]
        page = services.user_history(user_id=user_id, period=period, page=self.paginate_queryset)
        return self.get_paginated_response(HistoryEventSerializer(page, many=True).data)


class ReportsView(APIView):
    read_only_safe_methods = ("POST",)  # a report only reads history
    throttle_classes = [ReportThrottle]

    @extend_schema(
        summary="Write a history report file and return its URL",
        request=ReportRequestSerializer,
        examples=[
            request_example("A month", {"from": "2023-08"}),
            request_example("Quarter of one user", {"from": "2023-07", "to": "2023-09", "user_id": 1000}),
            request_example(
                "Month of one segment with source and actor",
                {"from": "2023-08", "segment": "AVITO_DISCOUNT_30", "detail": True},
            ),
        ],
        responses={201: ReportSerializer, **problems(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        data = validated(ReportRequestSerializer, request.data)
        report = services.report_write(query=query_of(data), header=data["header"], detail=data["detail"])
        return Response({"csv_url": report_url(request, report), "rows": report.rows}, status=status.HTTP_201_CREATED)


class HistoryCsvView(APIView):
    content_negotiation_class = FirstRenderer
    throttle_classes = [ReportThrottle]

    @extend_schema(
        summary="History events of a period as CSV, streamed",
        parameters=[HistoryCsvQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="user_id;segment;operation;at lines"),
            **problems(400, 401, 413, 429),
        },
    )
    def get(self, request):
        data = validated(HistoryCsvQuerySerializer, request.query_params)
        query = query_of(data)
        chunks = services.history_csv(query=query, header=data["header"], detail=data["detail"])
        response = StreamingHttpResponse(chunks, content_type=CSV_TYPE)
        response["Content-Disposition"] = f'attachment; filename="history_{query.period}.csv"'
        response["Cache-Control"] = "private, no-store"
        return response


@csrf_exempt  # it changes nothing; other methods get a 405 problem rather than a CSRF page
def report_file(request, name: str):
    """A report file by its random name, to anyone who has the URL; any other path is a 404."""
    if request.method not in ("GET", "HEAD"):
        response = problem_json_response(405, "method_not_allowed", "Method not allowed", "Use GET.")
        response["Allow"] = "GET, HEAD"
        return response
    file = services.report_open(name=name)
    if file is None:
        return problem_json_response(404, "not_found", "Not found", "No such report.")
    response = FileResponse(file, as_attachment=True, filename=name, content_type=CSV_TYPE)
    response["Cache-Control"] = "private, no-store"
    return response
