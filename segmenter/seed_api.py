"""The seed service's API (`/api/...`), kept for its existing clients.

A thin adapter: it maps the old field names onto the same services as /api/v1/ and has no
logic of its own. Both spellings of a field are accepted (`assign_features` and
`assign_segments`, `feature_slug` and `segment_slug`); giving both is a 400.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import replica
from core.auth import actor_of
from core.errors import UserNotFound
from core.fields import UserIdField
from core.parsers import AnyContentTypeJSONParser
from core.serializers import problems, request_example, validated
from reports.serializers import PeriodFields
from reports.services import report_write
from reports.throttles import ReportThrottle
from reports.views import query_of, report_url
from segments import selectors, services
from segments.fields import SlugField, SlugListField
from segments.serializers import MembershipsChangeSerializer
from segments.services.memberships import AddItem


def seed_example(name: str, value: dict):
    """A request example of the seed API, whose bodies are JSON whatever their Content-Type (`*/*` in the schema)."""
    return request_example(name, value, media_type="*/*")


FRACTION = {"max_digits": 5, "decimal_places": 2, "min_value": 1, "max_value": 100, "coerce_to_string": False}


class AliasedSerializer(serializers.Serializer):
    """Folds `aliases` ({old name: new name}) into one field; both spellings at once is an error."""

    aliases: dict[str, str] = {}

    def validate(self, attrs):
        for old, new in self.aliases.items():
            if old in attrs and new in attrs:
                raise serializers.ValidationError({old: [f"Give {old} or {new}, not both."]})
            if old in attrs:
                attrs[new] = attrs.pop(old)
        return attrs


class CreateSegmentSerializer(serializers.Serializer):
    segment_slug = SlugField()
    fraction = serializers.DecimalField(**FRACTION, required=False)


class CreateSegmentResultSerializer(serializers.Serializer):
    segment_slug = serializers.CharField()
    fraction = serializers.DecimalField(**{**FRACTION, "min_value": 0})  # 0 when no fraction was given


class SegmentSlugSerializer(serializers.Serializer):
    segment_slug = SlugField()


class UpdateUserSegmentsSerializer(AliasedSerializer):
    aliases = {"assign_features": "assign_segments", "unassign_features": "unassign_segments"}
    user_id = UserIdField()
    assign_segments = SlugListField(required=False)
    assign_features = SlugListField(required=False)
    unassign_segments = SlugListField(required=False)
    unassign_features = SlugListField(required=False)
    ttl = serializers.IntegerField(required=False, min_value=1, max_value=36_600, help_text="Days")


class UserIdSerializer(serializers.Serializer):
    user_id = UserIdField()


class SeedUserSegmentsSerializer(serializers.Serializer):
    segments = serializers.ListField(child=serializers.CharField())
    user_id = serializers.IntegerField()


class AutoAssignResultSerializer(serializers.Serializer):
    segment_slug = serializers.CharField()
    fraction = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False)
    added = serializers.IntegerField()
    removed = serializers.IntegerField()


class AutoAssignSerializer(AliasedSerializer):
    aliases = {"feature_slug": "segment_slug"}
    segment_slug = SlugField(required=False)
    feature_slug = SlugField(required=False)
    fraction = serializers.DecimalField(**FRACTION)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "segment_slug" not in attrs:
            raise serializers.ValidationError({"segment_slug": ["This field is required."]})
        return attrs


class GetUserHistorySerializer(PeriodFields, serializers.Serializer):
    first_field, last_field = "start_date", "end_date"
    user_id = UserIdField()


class CsvUrlSerializer(serializers.Serializer):
    csv_url = serializers.URLField()


class SeedView(APIView):
    parser_classes = [AnyContentTypeJSONParser]

    def body_or_query(self, request):
        """The two GETs take their fields from a JSON body or from the query string."""
        if int(request.META.get("CONTENT_LENGTH") or 0) > 0:
            return request.data
        return request.query_params.dict()


class CreateSegmentView(SeedView):
    @extend_schema(
        summary="Create a segment (seed API)",
        request=CreateSegmentSerializer,
        examples=[
            seed_example("A segment for 10 percent of users", {"segment_slug": "AVITO_DISCOUNT_50", "fraction": 10})
        ],
        responses={201: CreateSegmentResultSerializer, **problems(400, 401, 403, 409, 413)},
    )
    def post(self, request):
        data = validated(CreateSegmentSerializer, request.data)
        segment = services.segment_create(
            slug=data["segment_slug"], rollout_percent=data.get("fraction", 0), actor=actor_of(request)
        )
        return Response(
            {"segment_slug": segment.slug, "fraction": segment.rollout_percent}, status=status.HTTP_201_CREATED
        )


class DeleteSegmentView(SeedView):
    @extend_schema(
        summary="Delete a segment (seed API)",
        request=SegmentSlugSerializer,
        responses={200: SegmentSlugSerializer, **problems(400, 401, 403, 404, 413)},
    )
    def delete(self, request):
        data = validated(SegmentSlugSerializer, request.data)
        services.segment_delete(slug=data["segment_slug"], actor=actor_of(request))
        return Response({"segment_slug": data["segment_slug"]})


class UpdateUserSegmentsView(SeedView):
    @extend_schema(
        summary="Add and remove a user's segments (seed API)",
        request=UpdateUserSegmentsSerializer,
        examples=[
            seed_example(
                "Assign for 2 days and unassign",
                {
                    "user_id": 1000,
                    "assign_segments": ["AVITO_DISCOUNT_30"],
                    "unassign_segments": ["AVITO_VOICE_MESSAGES"],
                    "ttl": 2,
                },
            ),
            seed_example("Older field names", {"user_id": 1000, "assign_features": ["AVITO_DISCOUNT_30"]}),
        ],
        responses={200: MembershipsChangeSerializer, **problems(400, 401, 403, 404, 413)},
    )
    def post(self, request):
        data = validated(UpdateUserSegmentsSerializer, request.data)
        ttl_seconds = data["ttl"] * 86400 if "ttl" in data else None
        change = services.memberships_update(
            user_id=data["user_id"],
            add=[AddItem(slug=slug, ttl_seconds=ttl_seconds) for slug in data.get("assign_segments", [])],
            remove=data.get("unassign_segments", []),
            source="api",
            actor=actor_of(request),
        )
        return Response(MembershipsChangeSerializer(change).data)


class GetUserSegmentsView(SeedView):
    @extend_schema(
        summary="A user's active segments (seed API); user_id in a JSON body or the query string",
        request=UserIdSerializer,
        parameters=[UserIdSerializer],
        responses={200: SeedUserSegmentsSerializer, **problems(400, 401, 404)},
    )
    def get(self, request):
        user_id = validated(UserIdSerializer, self.body_or_query(request))["user_id"]
        slugs = replica.read(lambda alias: selectors.user_segment_slugs(user_id, using=alias))
        if slugs is None:
            raise UserNotFound(user_id)
        return Response({"segments": slugs, "user_id": user_id})


class AutoAssignSegmentView(SeedView):
    @extend_schema(
        summary="Set a segment's rollout percent (seed API)",
        request=AutoAssignSerializer,
        examples=[seed_example("Roll out to 20 percent", {"segment_slug": "AVITO_VOICE_MESSAGES", "fraction": 20})],
        responses={200: AutoAssignResultSerializer, **problems(400, 401, 403, 404, 413)},
    )
    def post(self, request):
        data = validated(AutoAssignSerializer, request.data)
        result = services.rollout_apply(slug=data["segment_slug"], percent=data["fraction"], actor=actor_of(request))
        return Response(
            {"segment_slug": result.slug, "fraction": result.percent, "added": result.added, "removed": result.removed}
        )


class GetUserHistoryView(SeedView):
    throttle_classes = [ReportThrottle]  # each call writes a report file

    @extend_schema(
        summary="A user's history of a period as a CSV file URL (seed API); fields in a JSON body or the query string",
        request=GetUserHistorySerializer,
        parameters=[GetUserHistorySerializer],
        responses={200: CsvUrlSerializer, **problems(400, 401, 413, 429)},
    )
    def get(self, request):
        data = validated(GetUserHistorySerializer, self.body_or_query(request))
        return Response({"csv_url": report_url(request, report_write(query=query_of(data)))})
