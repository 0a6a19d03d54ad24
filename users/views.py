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
from segments.serializers import MembershipsChangeSerializer, MembershipsPatchSerializer
from segments.services import memberships_update
from users import services
from users.models import User
from users.serializers import (
    UserSegmentsSerializer,
    UserSerializer,
    UsersRegisterResultSerializer,
    UsersRegisterSerializer,
    UsersSegmentsRequestSerializer,
    UsersSegmentsSerializer,
)

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
