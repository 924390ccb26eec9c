"""Outbound webhook subscriptions and their delivery log:
POST/GET /api/v1/webhooks, GET/DELETE /api/v1/webhooks/{id},
GET /api/v1/webhooks/{id}/deliveries, POST /api/v1/webhooks/deliveries/{id}/resend.

The subscription's signing secret is in the answer to its creation only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.openapi import error_responses
from apps.core.exceptions import NotFoundError
from apps.core.rest import StrictCharField, StrictChoiceField, StrictJSONParser, StrictSerializer
from apps.core.text import ascii_digits
from apps.webhooks.models import EventType, PayloadFormat, WebhookDelivery, WebhookSubscription
from apps.webhooks.services import (
    webhook_delivery_resend,
    webhook_subscription_create,
    webhook_subscription_delete,
)

MAX_DELIVERIES = 200


class SubscriptionCreateSerializer(StrictSerializer):
    url = StrictCharField(max_length=2000)
    event_types = serializers.ListField(
        child=StrictChoiceField(choices=EventType.choices), min_length=1, max_length=20
    )
    payload_format = StrictChoiceField(
        choices=PayloadFormat.choices, required=False, default=PayloadFormat.DESKPILOT
    )
    name = StrictCharField(required=False, allow_blank=True, max_length=100, default="")


SUBSCRIPTION_FIELDS: tuple[str, ...] = (
    "id", "name", "url", "event_types", "payload_format", "is_active", "created_by", "created_at",
)  # fmt: skip


class SubscriptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = SUBSCRIPTION_FIELDS
        read_only_fields = SUBSCRIPTION_FIELDS


class SubscriptionCreatedSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        help_text="Signs every delivery (HMAC-SHA256); shown only in this answer."
    )

    class Meta:
        model = WebhookSubscription
        fields = (*SUBSCRIPTION_FIELDS, "secret")
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = (
            "id", "event_id", "event_type", "status", "attempts", "response_status",
            "last_error", "next_attempt_at", "last_attempt_at", "delivered_at", "created_at",
        )  # fmt: skip
        read_only_fields = fields


def _subscription(subscription_id: str) -> WebhookSubscription:
    found = (
        WebhookSubscription.objects.filter(pk=int(subscription_id)).first()
        if ascii_digits(subscription_id)
        else None
    )
    if found is None:
        raise NotFoundError(
            f"webhook subscription {subscription_id[:40]!r} does not exist", field="webhook_id"
        )
    return found


class WebhookListCreateView(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="Webhook subscriptions",
        responses={200: SubscriptionSerializer(many=True), **error_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        subscriptions = WebhookSubscription.objects.order_by("id")
        return Response(SubscriptionSerializer(subscriptions, many=True).data)

    @extend_schema(
        summary="Subscribe a URL to events (ticket.created, message.created, draft.ready, "
        "ticket.handed_off, ticket.resolved, alert.fired); deliveries are signed with the "
        "returned secret",
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionCreatedSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        payload = SubscriptionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        subscription = webhook_subscription_create(
            url=data["url"],
            event_types=data["event_types"],
            payload_format=data["payload_format"],
            name=data["name"],
            created_by=f"api-key:{request.auth.pk}" if request.auth is not None else "",
        )
        body = SubscriptionCreatedSerializer(subscription).data
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    @extend_schema(
        summary="One webhook subscription",
        responses={200: SubscriptionSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(SubscriptionSerializer(_subscription(webhook_id)).data)

    @extend_schema(
        summary="Remove a webhook subscription and its delivery log",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: Request, webhook_id: str) -> Response:
        webhook_subscription_delete(subscription_id=_subscription(webhook_id).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListView(APIView):
    @extend_schema(
        summary=f"A subscription's deliveries, newest first (at most {MAX_DELIVERIES})",
        responses={200: DeliverySerializer(many=True), **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        deliveries = _subscription(webhook_id).deliveries.order_by("-id")[:MAX_DELIVERIES]
        return Response(DeliverySerializer(deliveries, many=True).data)


class WebhookDeliveryResendView(APIView):
    @extend_schema(
        summary="Send a delivery again (same event id), whatever became of it",
        request=None,
        responses={202: DeliverySerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, delivery_id: str) -> Response:
        if not ascii_digits(delivery_id):
            raise NotFoundError(
                f"webhook delivery {delivery_id[:40]!r} does not exist", field="delivery_id"
            )
        delivery = webhook_delivery_resend(delivery_id=int(delivery_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
