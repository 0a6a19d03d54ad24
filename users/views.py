from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core import replica
from core.auth import actor_of
from core.errors import UserNotFound
from core.fields import parse_user_id
from core.serializers import problems, request_example, validated
from segments import selectors
from segments.fields import parse_slug
from segments.serializers import ExplanationSerializer, MembershipsChangeSerializer, MembershipsPatchSerializer
from segments.services import membership_explain, memberships_update
from users import services
from users.attribute_writes import user_attributes_get, user_attributes_write, users_attributes_write
from users.models import User
from users.serializers import (
    AttributesBatchResultSerializer,
    AttributesBatchSerializer,
    AttributesSerializer,
    AttributesWriteSerializer,
    AttributesWrittenSerializer,
    UserSegmentsSerializer,
    UserSerializer,
    UsersRegisterResultSerializer,
    UsersRegisterSerializer,
    UsersSegmentsRequestSerializer,
    UsersSegmentsSerializer,
)

ATTRIBUTES_EXAMPLE = {"city": "Moscow", "app_version": "6.2.1", "registered_at": "2026-11-20T10:00:00Z"}
USER_ID_PARAM = OpenApiParameter("user_id", int, OpenApiParameter.PATH, description="The user's id, 1..2^63-1")


def user_id_from(kwargs) -> int:
    try:
        return parse_user_id(kwargs["user_id"])
    except ValidationError as exc:
        raise ValidationError({"user_id": exc.detail}) from None


class UserViewSet(viewsets.GenericViewSet):
    lookup_field = "user_id"
    lookup_value_regex = "[^/]+"
    serializer_class = UserSerializer

    def _render(self, user: User, status_code=status.HTTP_200_OK) -> Response:
        data = {
            "user_id": user.id,
            "created_at": user.created_at,
            "memberships": list(selectors.user_memberships(user.id)),
        }
        return Response(UserSerializer(data).data, status=status_code)

    @extend_schema(
        summary="Register users by id (bulk)",
        request=UsersRegisterSerializer,
        examples=[request_example("Three users", {"user_ids": [1000, 1001, 5000]})],
        responses={200: UsersRegisterResultSerializer, **problems(400, 401, 403, 413, 415)},
    )
    def create(self, request):
        data = validated(UsersRegisterSerializer, request.data)
        created, existing = services.users_register(user_ids=data["user_ids"], actor=actor_of(request))
        return Response({"created": created, "existing": existing})

    @extend_schema(
        summary="Register a user (idempotent)",
        parameters=[USER_ID_PARAM],
        request=None,
        responses={200: UserSerializer, 201: UserSerializer, **problems(400, 401, 403)},
    )
    def update(self, request, user_id=None):
        user_id = user_id_from(self.kwargs)
        user, created = services.user_register(user_id=user_id, actor=actor_of(request))
        return self._render(user, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="A user and their active memberships",
        parameters=[USER_ID_PARAM],
        responses={200: UserSerializer, **problems(400, 401, 404)},
    )
    def retrieve(self, request, user_id=None):
        user_id = user_id_from(self.kwargs)
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise UserNotFound(user_id)
        return self._render(user)

    @extend_schema(
        summary="Delete a user and their memberships",
        parameters=[USER_ID_PARAM],
        responses={204: None, **problems(400, 401, 403, 404)},
    )
    def destroy(self, request, user_id=None):
        services.user_delete(user_id=user_id_from(self.kwargs), actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The user's active segments (the hot path)",
        parameters=[USER_ID_PARAM],
        responses={200: UserSegmentsSerializer, **problems(400, 401, 404)},
    )
    @action(detail=True, methods=["get"])
    def segments(self, request, user_id=None):
        user_id = user_id_from(self.kwargs)
        slugs = replica.read(lambda alias: selectors.user_segment_slugs(user_id, using=alias))
        if slugs is None:
            raise UserNotFound(user_id)
        return Response({"user_id": user_id, "segments": slugs})

    @extend_schema(
        operation_id="v1_users_segment_explain",
        summary="Why the user is, or is not, in a segment: membership, rule match, bucket, exclusion",
        parameters=[USER_ID_PARAM, OpenApiParameter("slug", str, OpenApiParameter.PATH, description="Segment slug")],
        responses={200: ExplanationSerializer, **problems(400, 401, 404)},
    )
    @action(detail=True, methods=["get"], url_path="segments/(?P<slug>[^/]+)", url_name="segment-explain")
    def segment_explain(self, request, user_id=None, slug=None):
        explanation = membership_explain(user_id=user_id_from(self.kwargs), slug=parse_slug(slug))
        return Response(ExplanationSerializer(explanation).data)

    def _attributes(self, user_id: int, written=None, status_code=status.HTTP_200_OK) -> Response:
        attributes, updated_at = user_attributes_get(user_id=user_id)
        data = {"user_id": user_id, "attributes": attributes, "updated_at": updated_at}
        if written is None:
            return Response(AttributesSerializer(data).data)
        data |= {"entered": written.entered.get(user_id, []), "left": written.left.get(user_id, [])}
        return Response(AttributesWrittenSerializer(data).data, status=status_code)

    @extend_schema(
        summary="The user's attributes",
        parameters=[USER_ID_PARAM],
        responses={200: AttributesSerializer, **problems(400, 401, 404)},
    )
    @action(detail=True, methods=["get"])
    def attributes(self, request, user_id=None):
        return self._attributes(user_id_from(self.kwargs))

    @extend_schema(
        summary="Replace the user's attributes (registers an unknown user: 201)",
        parameters=[USER_ID_PARAM],
        request=AttributesWriteSerializer,
        examples=[request_example("Attributes", {"attributes": ATTRIBUTES_EXAMPLE})],
        responses={
            200: AttributesWrittenSerializer,
            201: AttributesWrittenSerializer,
            **problems(400, 401, 403, 413, 415),
        },
    )
    @attributes.mapping.put
    def attributes_replace(self, request, user_id=None):
        return self._attributes_write(merge=False)

    @extend_schema(
        summary="Merge a patch into the user's attributes (RFC 7396: null deletes a key)",
        parameters=[USER_ID_PARAM],
        request=AttributesWriteSerializer,
        examples=[request_example("Set one, delete another", {"attributes": {"city": "Kazan", "tags": None}})],
        responses={200: AttributesWrittenSerializer, **problems(400, 401, 403, 404, 413, 415)},
    )
    @attributes.mapping.patch
    def attributes_merge(self, request, user_id=None):
        return self._attributes_write(merge=True)

    def _attributes_write(self, *, merge: bool) -> Response:
        user_id = user_id_from(self.kwargs)
        data = validated(AttributesWriteSerializer, self.request.data)
        written = user_attributes_write(
            user_id=user_id,
            attributes=data["attributes"],
            merge=merge,
            register=not merge,
            actor=actor_of(self.request),
        )
        return self._attributes(user_id, written, status.HTTP_201_CREATED if written.created else status.HTTP_200_OK)

    @extend_schema(
        summary="Add and remove the user's segments, all or nothing",
        parameters=[USER_ID_PARAM],
        request=MembershipsPatchSerializer,
        examples=[
            request_example(
                "Add one for 2 days and remove",
                {
                    "add": ["AVITO_DISCOUNT_30", {"slug": "AVITO_PERFORMANCE_VAS", "ttl_seconds": 172800}],
                    "remove": ["AVITO_VOICE_MESSAGES"],
                },
            ),
            request_example(
                "Add until a date", {"add": [{"slug": "AVITO_DISCOUNT_30", "expires_at": "2035-01-01T00:00:00Z"}]}
            ),
            request_example("Remove", {"remove": ["AVITO_VOICE_MESSAGES"]}),
        ],
        responses={200: MembershipsChangeSerializer, **problems(400, 401, 403, 404, 413, 415)},
    )
    @segments.mapping.patch
    def segments_change(self, request, user_id=None):
        user_id = user_id_from(self.kwargs)
        data = validated(MembershipsPatchSerializer, request.data)
        change = memberships_update(
            user_id=user_id, add=data["add"], remove=data["remove"], source="api", actor=actor_of(request)
        )
        return Response(MembershipsChangeSerializer(change).data)


class UsersAttributesView(APIView):
    @extend_schema(
        operation_id="v1_users_attributes_batch",
        summary="Write many users' attributes (up to 10,000, all or nothing; unknown users are registered)",
        request=AttributesBatchSerializer,
        examples=[
            request_example(
                "Merge two users' attributes",
                {
                    "users": [
                        {"user_id": 1000, "attributes": ATTRIBUTES_EXAMPLE},
                        {"user_id": 1001, "attributes": {"city": None}},
                    ],
                    "mode": "merge",
                },
            )
        ],
        responses={200: AttributesBatchResultSerializer, **problems(400, 401, 403, 413, 415)},
    )
    def post(self, request):
        data = validated(AttributesBatchSerializer, request.data)
        written = users_attributes_write(
            items=[(item["user_id"], item["attributes"]) for item in data["users"]],
            merge=data["mode"] == "merge",
            register=True,
            actor=actor_of(request),
        )
        return Response(
            {
                "created": len(written.created),
                "updated": written.updated,
                "entered": sum(map(len, written.entered.values())),
                "left": sum(map(len, written.left.values())),
            }
        )


class UsersSegmentsView(APIView):
    read_only_safe_methods = ("POST",)  # a lookup of many users at once only reads

    @extend_schema(
        operation_id="v1_users_segments_batch",
        summary="Many users' active segments at once (up to 1,000, one query)",
        request=UsersSegmentsRequestSerializer,
        examples=[request_example("Two users and an unknown one", {"user_ids": [1000, 1001, 5000]})],
        responses={200: UsersSegmentsSerializer, **problems(400, 401, 413, 415)},
    )
    def post(self, request):
        data = validated(UsersSegmentsRequestSerializer, request.data)
        users, unknown = replica.read(lambda alias: selectors.users_segment_slugs(data["user_ids"], using=alias))
        return Response({"users": users, "unknown_user_ids": unknown})
