from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.auth import TokenPermission
from core.pagination import Pagination
from core.serializers import problems, request_example, validated
from events.models import Delivery, Webhook
from events.serializers import (
    DeliverySerializer,
    WebhookChangeSerializer,
    WebhookCreatedSerializer,
    WebhookCreateSerializer,
    WebhookSerializer,
)
from events.services import webhooks as services

ID_PARAM = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Webhook id")
# A public address rather than a name, so that the example is accepted without DNS (the schema test runs offline).
WEBHOOK_EXAMPLE_URL = "https://93.184.215.14/segmenter/events"


class WritingTokenPermission(TokenPermission):
    """Webhook management, reads included, needs a writing token (a webhook's settings lead to its secret's use)."""

    def has_permission(self, request, view) -> bool:
        super().has_permission(request, view)
        if request.user.read_only:
            raise exceptions.PermissionDenied("Webhook management needs a writing token.")
        return True


class IdPagination(Pagination):
    ordering = "id"


class DeliveryPagination(Pagination):
    ordering = "-id"


@extend_schema_view(
    list=extend_schema(summary="List webhooks", responses={200: WebhookSerializer, **problems(401, 403, 404)}),
    retrieve=extend_schema(
        summary="Get a webhook", parameters=[ID_PARAM], responses={200: WebhookSerializer, **problems(401, 403, 404)}
    ),
    create=extend_schema(
        summary="Create a webhook (its secret is shown only here)",
        request=WebhookCreateSerializer,
        examples=[
            request_example(
                "Membership events of one segment",
                {
                    "url": WEBHOOK_EXAMPLE_URL,
                    "description": "CRM sync",
                    "event_types": ["membership.added", "membership.removed"],
                    "segments": ["AVITO_DISCOUNT_30"],
                },
            ),
            request_example("Every event", {"url": WEBHOOK_EXAMPLE_URL}),
        ],
        responses={201: WebhookCreatedSerializer, **problems(400, 401, 403, 404, 413, 415)},
    ),
    partial_update=extend_schema(
        summary="Change or enable a webhook (enabling sends its undelivered events again)",
        parameters=[ID_PARAM],
        request=WebhookChangeSerializer,
        examples=[
            request_example("Every segment", {"segments": []}),
            request_example("Enable again", {"enabled": True}),
        ],
        responses={200: WebhookSerializer, **problems(400, 401, 403, 404, 413, 415)},
    ),
    destroy=extend_schema(
        summary="Delete a webhook", parameters=[ID_PARAM], responses={204: None, **problems(401, 403, 404)}
    ),
)
class WebhookViewSet(viewsets.GenericViewSet):
    permission_classes = [WritingTokenPermission]
    lookup_field = "id"
    lookup_value_regex = "[0-9]{1,18}"
    pagination_class = IdPagination
    serializer_class = WebhookSerializer
    queryset = Webhook.objects.all()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _id(self) -> int:
        return int(self.kwargs["id"])

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    def retrieve(self, request, id=None):
        return Response(WebhookSerializer(services.webhook_get(webhook_id=self._id())).data)

    def create(self, request):
        webhook = services.webhook_create(**validated(WebhookCreateSerializer, request.data))
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        data = validated(WebhookChangeSerializer, request.data)
        return Response(WebhookSerializer(services.webhook_change(webhook_id=self._id(), **data)).data)

    def destroy(self, request, id=None):
        services.webhook_delete(webhook_id=self._id())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Send a ping message",
        parameters=[ID_PARAM],
        request=None,
        responses={202: None, **problems(401, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        services.webhook_ping(webhook_id=self._id())
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Delivery attempts, newest first",
        parameters=[ID_PARAM],
        responses={200: DeliverySerializer(many=True), **problems(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=DeliveryPagination)
    def deliveries(self, request, id=None):
        webhook = services.webhook_get(webhook_id=self._id())
        attempts = Delivery.objects.filter(message__webhook=webhook).select_related("message")
        page = self.paginate_queryset(attempts)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)
