import io

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from core.auth import actor_of
from core.fields import parse_user_id
from core.pagination import SlugPagination, UserIdPagination
from core.serializers import problems, request_example, validated
from segments import selectors, services
from segments.fields import parse_slug
from segments.models import Exclusion, Import, Membership
from segments.serializers import (
    AttributeImportRequestSerializer,
    ExclusionSerializer,
    ImportRequestSerializer,
    ImportSerializer,
    MemberSerializer,
    RolloutRequestSerializer,
    RolloutResultSerializer,
    RulePreviewRequestSerializer,
    RulePreviewSerializer,
    SegmentChangeSerializer,
    SegmentCreateSerializer,
    SegmentSerializer,
)

SLUG_PARAM = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="Segment slug (case-sensitive)")
IMPORT_FORMATS = {"text/csv": "csv", "application/json": "json"}
ATTRIBUTE_IMPORT_FORMATS = {"application/x-ndjson": "ndjson", "text/csv": "csv"}
IDEMPOTENCY_KEY_MAX = 255
RULE_EXAMPLE = {
    "all": [
        {"attribute": "city", "op": "in", "value": ["Moscow", "Saint Petersburg"]},
        {"attribute": "app_version", "op": "version_gte", "value": "6.2"},
        {"attribute": "registered_at", "op": "after", "value": "-P30D"},
    ]
}
USER_ID_PARAM = OpenApiParameter("user_id", int, OpenApiParameter.PATH, description="The user's id, 1..2^63-1")

IDEMPOTENCY_KEY_PARAM = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Repeated with the same request, returns the same import (200)",
)


@extend_schema_view(
    list=extend_schema(summary="List segments", responses={200: SegmentSerializer, **problems(401, 404)}),
    retrieve=extend_schema(
        summary="Get a segment", parameters=[SLUG_PARAM], responses={200: SegmentSerializer, **problems(400, 401, 404)}
    ),
    create=extend_schema(
        summary="Create a segment",
        request=SegmentCreateSerializer,
        examples=[
            request_example("A segment", {"slug": "AVITO_DISCOUNT_50", "description": "50% off promotion"}),
            request_example(
                "With a rollout to 10 percent of users",
                {"slug": "AVITO_DISCOUNT_50", "description": "50% off promotion", "rollout_percent": 10},
            ),
            request_example(
                "Defined by a rule (its percent 100 unless given)",
                {"slug": "MOSCOW_NEW_APP", "rule": RULE_EXAMPLE},
            ),
        ],
        responses={201: SegmentSerializer, **problems(400, 401, 403, 409, 413, 415)},
    ),
    update=extend_schema(
        summary="Create or change a segment (idempotent)",
        parameters=[SLUG_PARAM],
        request=SegmentChangeSerializer,
        examples=[request_example("Description and rollout", {"description": "Voice messages", "rollout_percent": 10})],
        responses={200: SegmentSerializer, 201: SegmentSerializer, **problems(400, 401, 403, 413, 415)},
    ),
    partial_update=extend_schema(
        summary="Change a segment",
        parameters=[SLUG_PARAM],
        request=SegmentChangeSerializer,
        examples=[
            request_example("Raise the rollout", {"rollout_percent": 25}),
            request_example("Set a rule", {"rule": RULE_EXAMPLE}),
            request_example("Clear the rule", {"rule": None}),
        ],
        responses={200: SegmentSerializer, **problems(400, 401, 403, 404, 413, 415)},
    ),
    destroy=extend_schema(
        summary="Delete a segment and all its memberships",
        parameters=[SLUG_PARAM],
        responses={204: None, **problems(400, 401, 403, 404)},
    ),
)
class SegmentViewSet(viewsets.GenericViewSet):
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    pagination_class = SlugPagination
    serializer_class = SegmentSerializer
    queryset = selectors.segments_with_member_count()

    def _slug(self) -> str:
        return parse_slug(self.kwargs["slug"])

    def _render(self, segment, status_code=status.HTTP_200_OK) -> Response:
        segment = selectors.segments_with_member_count().get(pk=segment.pk)
        return Response(SegmentSerializer(segment).data, status=status_code)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SegmentSerializer(page, many=True).data)

    def retrieve(self, request, slug=None):
        return self._render(services.segment_get(slug=self._slug()))

    def create(self, request):
        data = validated(SegmentCreateSerializer, request.data)
        segment = services.segment_create(**data, actor=actor_of(request))
        return self._render(segment, status.HTTP_201_CREATED)

    def update(self, request, slug=None):
        slug = self._slug()
        data = validated(SegmentChangeSerializer, request.data)
        segment, created = services.segment_upsert(slug=slug, **data, actor=actor_of(request))
        return self._render(segment, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def partial_update(self, request, slug=None):
        slug = self._slug()
        data = validated(SegmentChangeSerializer, request.data)
        return self._render(services.segment_update(slug=slug, **data, actor=actor_of(request)))

    def destroy(self, request, slug=None):
        services.segment_delete(slug=self._slug(), actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Active members of a segment",
        parameters=[SLUG_PARAM],
        responses={200: MemberSerializer(many=True), **problems(400, 401, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=UserIdPagination)
    def members(self, request, slug=None):
        segment = services.segment_get(slug=self._slug())
        members = (
            Membership.objects.active().filter(segment=segment).values("user_id", "added_at", "expires_at", "source")
        )
        page = self.paginate_queryset(members)
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(
        summary="Set the rollout percent (or preview it with dry_run)",
        parameters=[SLUG_PARAM],
        request=RolloutRequestSerializer,
        examples=[
            request_example("Preview a rollout to 25 percent", {"percent": 25, "dry_run": True}),
            request_example("Roll out to 25 percent", {"percent": 25}),
        ],
        responses={200: RolloutResultSerializer, **problems(400, 401, 403, 404, 413, 415)},
    )
    @action(detail=True, methods=["post"])
    def rollout(self, request, slug=None):
        slug = self._slug()
        data = validated(RolloutRequestSerializer, request.data)
        result = services.rollout_apply(
            slug=slug, percent=data["percent"], dry_run=data["dry_run"], actor=actor_of(request)
        )
        return Response(RolloutResultSerializer(result).data)

    @extend_schema(
        summary="Users excluded from the segment's automatic assignment",
        parameters=[SLUG_PARAM],
        responses={200: ExclusionSerializer(many=True), **problems(400, 401, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=UserIdPagination)
    def exclusions(self, request, slug=None):
        segment = services.segment_get(slug=self._slug())
        page = self.paginate_queryset(Exclusion.objects.filter(segment=segment).values("user_id", "at", "actor"))
        return self.get_paginated_response(ExclusionSerializer(page, many=True).data)

    @extend_schema(
        summary="End a user's exclusion (the user is evaluated at once)",
        parameters=[SLUG_PARAM, USER_ID_PARAM],
        responses={204: None, **problems(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["delete"], url_path="exclusions/(?P<user_id>[^/]+)", url_name="exclusion")
    def exclusion(self, request, slug=None, user_id=None):
        slug = self._slug()
        try:
            user_id = parse_user_id(user_id)
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({"user_id": exc.detail}) from None
        services.exclusion_delete(slug=slug, user_id=user_id, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Import members from a file (CSV or JSON, up to 200 MiB), applied by the worker",
        parameters=[
            SLUG_PARAM,
            OpenApiParameter("mode", str, enum=["add", "remove", "replace"], description="Default add"),
            OpenApiParameter("ttl_seconds", int, description="Added users leave after this many seconds"),
            OpenApiParameter(
                "register",
                bool,
                description="true: register the listed users who are not registered yet (add, replace); "
                "default false: they are skipped, counted and the first 20 listed",
            ),
            IDEMPOTENCY_KEY_PARAM,
        ],
        request={
            "text/csv": {"type": "string", "description": "user_id[,expires_at] a line; optional header line"},
            "application/json": {
                "type": "object",
                "properties": {"user_ids": {"type": "array", "items": {"type": "integer"}}},
                "required": ["user_ids"],
            },
        },
        examples=[
            request_example("Two users", {"user_ids": [1000, 1001]}),
            request_example("Two users as CSV", "user_id\n1000\n1001\n", media_type="text/csv"),
        ],
        responses={
            202: OpenApiResponse(ImportSerializer, description="Queued; Location is the import's URL"),
            200: OpenApiResponse(ImportSerializer, description="The import of an earlier request with this key"),
            **problems(400, 401, 403, 404, 411, 413, 415, 422, 503),
        },
    )
    @action(detail=True, methods=["post"], url_path="imports")
    def imports(self, request, slug=None):
        slug = self._slug()
        format = _import_format(request, IMPORT_FORMATS)
        query = validated(ImportRequestSerializer, request.query_params)
        started, created = services.import_create(
            slug=slug,
            body=request.stream or io.BytesIO(),
            format=format,
            mode=query["mode"],
            ttl_seconds=query["ttl_seconds"],
            register=query["register"],
            actor=actor_of(request),
            idempotency_key=_idempotency_key(request),
        )
        return _import_queued(request, started, created)


def _import_format(request, formats: dict[str, str]) -> str:
    """The import format of the request's media type, or 415."""
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in formats:
        raise exceptions.UnsupportedMediaType(media_type, f"Send {' or '.join(formats)}.")
    return formats[media_type]


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.isprintable() and key.isascii()):
        message = f"1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters."
        raise exceptions.ValidationError({"Idempotency-Key": [message]})
    return key or ""


def _import_queued(request, started: Import, created: bool) -> Response:
    """202 with the new import and its Location, or 200 with the one an earlier request with the key made."""
    location = request.build_absolute_uri(reverse("import-detail", args=[started.pk]))
    return Response(
        ImportSerializer(started).data,
        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        headers={"Location": location},
    )


class AttributeImportsView(APIView):
    """Users' attributes from a file: NDJSON, one `{"user_id", "attributes"}` a line, or CSV with a header
    `user_id,key1,key2,…` (cells are strings). Checked whole by the worker (one invalid line fails the import
    and nothing changes), then applied in chunks; poll the import at its Location."""

    @extend_schema(
        operation_id="v1_users_attributes_imports_create",
        summary="Import users' attributes from a file (NDJSON or CSV, up to 10,000,000 lines), applied by the worker",
        parameters=[
            OpenApiParameter("mode", str, enum=["merge", "replace"], description="Default merge (a JSON merge patch)"),
            OpenApiParameter(
                "register",
                bool,
                description="Default true: register the listed users who are not registered yet; "
                "false: they are skipped, counted and the first 20 listed",
            ),
            IDEMPOTENCY_KEY_PARAM,
        ],
        request={
            "application/x-ndjson": {
                "type": "string",
                "description": 'One {"user_id": 1000, "attributes": {"city": "Moscow"}} a line',
            },
            "text/csv": {
                "type": "string",
                "description": "A header line user_id,key1,key2,... then a user a line; cells are strings, an "
                "empty cell leaves its key out",
            },
        },
        examples=[
            request_example(
                "Two users as NDJSON",
                '{"user_id": 1000, "attributes": {"city": "Moscow", "app_version": "6.2"}}\n'
                '{"user_id": 1001, "attributes": {"city": null, "premium": true}}\n',
                media_type="application/x-ndjson",
            ),
            request_example(
                "Two users as CSV", "user_id,city,app_version\n1000,Moscow,6.2\n1001,Kazan,\n", media_type="text/csv"
            ),
        ],
        responses={
            202: OpenApiResponse(ImportSerializer, description="Queued; Location is the import's URL"),
            200: OpenApiResponse(ImportSerializer, description="The import of an earlier request with this key"),
            **problems(400, 401, 403, 411, 413, 415, 422, 503),
        },
    )
    def post(self, request):
        format = _import_format(request, ATTRIBUTE_IMPORT_FORMATS)
        query = validated(AttributeImportRequestSerializer, request.query_params)
        started, created = services.attribute_import_create(
            body=request.stream or io.BytesIO(),
            format=format,
            mode=query["mode"],
            register=query["register"],
            actor=actor_of(request),
            idempotency_key=_idempotency_key(request),
        )
        return _import_queued(request, started, created)


@extend_schema_view(
    retrieve=extend_schema(
        summary="An import's status and counts",
        responses={200: ImportSerializer, **problems(401, 404)},
    )
)
class ImportViewSet(viewsets.GenericViewSet):
    lookup_field = "id"
    lookup_value_regex = "[0-9]{1,18}"  # anything else is no route: 404
    serializer_class = ImportSerializer
    queryset = Import.objects.all()

    def retrieve(self, request, id=None):
        found = Import.objects.filter(pk=int(id)).first()
        if found is None:
            raise exceptions.NotFound("No such import.")
        return Response(ImportSerializer(found).data)


class RulePreviewView(APIView):
    read_only_safe_methods = ("POST",)  # a preview changes nothing

    @extend_schema(
        operation_id="v1_segments_rule_preview",
        summary="What saving a rule would do: users matching, memberships added and removed, a sample",
        parameters=[SLUG_PARAM],
        request=RulePreviewRequestSerializer,
        examples=[request_example("A rule", {"rule": RULE_EXAMPLE})],
        responses={200: RulePreviewSerializer, **problems(400, 401, 404, 413, 415)},
    )
    def post(self, request, slug=None):
        data = validated(RulePreviewRequestSerializer, request.data)
        preview = services.rule_preview(slug=parse_slug(slug), rule=data["rule"])
        return Response(RulePreviewSerializer(preview).data)
