"""Tickets: create, add messages, read one, list with filters and cursor pagination."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiKey
from apps.api.authentication import request_api_key
from apps.api.idempotency import idempotent
from apps.api.openapi import IDEMPOTENCY_KEY_PARAMETER, error_responses
from apps.api.serializers.drafts import TicketWithDraftSerializer
from apps.api.serializers.tickets import (
    MessageCreatedSerializer,
    MessageCreateSerializer,
    TicketCreatedSerializer,
    TicketCreateSerializer,
    TicketListQuerySerializer,
    TicketSerializer,
)
from apps.core.exceptions import NotFoundError
from apps.core.rest import StrictJSONParser
from apps.core.text import ascii_digits
from apps.tickets.models import Channel, Ticket
from apps.tickets.selectors import ticket_get, ticket_list
from apps.tickets.services import Actor, customer_resolve, message_add, ticket_create

MAX_ID = 2**63 - 1

TICKET_ID_PARAMETER = OpenApiParameter(
    name="ticket_id", type=int, location=OpenApiParameter.PATH, description="The ticket's id."
)


def _ticket_from_path(raw_id: str) -> Ticket:
    # Validated here, not by the URL converter: a bad id gets the API's JSON 404, and an id
    # beyond bigint never reaches the database.
    if not ascii_digits(raw_id) or not 0 < int(raw_id) <= MAX_ID:
        raise NotFoundError(f"ticket {raw_id[:40]!r} does not exist", field="ticket_id")
    return ticket_get(ticket_id=int(raw_id))


class TicketPagination(CursorPagination):
    # id: unique and never changes, so pages never skip or repeat a ticket.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except Exception:  # DRF answers a bad cursor with 404; it is bad input
            raise serializers.ValidationError({"cursor": ["invalid cursor"]}) from None
        # DRF trusts the decoded position and filters on it: a crafted one (not an id) would
        # reach the database as `id < 'abc'`. It is the query string's text (the stub's `int`
        # is wrong), hence str().
        position = None if cursor is None or cursor.position is None else str(cursor.position)
        if position is not None and not (ascii_digits(position) and 0 < int(position) <= MAX_ID):
            raise serializers.ValidationError({"cursor": ["invalid cursor"]})
        return cursor


class TicketListCreateView(generics.ListAPIView):
    serializer_class = TicketSerializer
    pagination_class = TicketPagination
    parser_classes = [StrictJSONParser]

    def get_queryset(self) -> QuerySet[Ticket]:
        query = TicketListQuerySerializer(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = {
            name: value
            for name, value in query.validated_data.items()
            if name not in ("cursor", "limit")
        }
        return ticket_list(**filters).select_related("assignee")

    @extend_schema(
        summary="List tickets, newest first, with filters and cursor pagination",
        parameters=[TicketListQuerySerializer],
        responses={200: TicketSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Open a ticket with the customer's first message",
        request=TicketCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: TicketCreatedSerializer,
            **error_responses(400, 401, 403, 409, 413, 415, 422),
        },
    )
    def post(self, request: Request) -> Response:
        payload = TicketCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        api_key = request_api_key(request)
        return idempotent(request, lambda: self._create(payload.validated_data, api_key))

    def _create(self, data: dict[str, Any], api_key: ApiKey) -> Response:
        customer_data = data.get("customer") or {}
        customer = customer_resolve(
            email=customer_data.get("email", ""),
            name=customer_data.get("name", ""),
            external_id=customer_data.get("external_id", ""),
        )
        ticket, message = ticket_create(
            customer=customer,
            subject=data.get("subject", ""),
            body=data["body"],
            channel=data["channel"],
            priority=data["priority"],
            actor=Actor.for_api_key(api_key),
            source_api_key=api_key,
        )
        body = TicketCreatedSerializer(
            {
                "id": ticket.pk,
                "status": ticket.status,
                "channel": ticket.channel,
                "customer_id": customer.pk,
                "message_id": message.pk,
                "created_at": ticket.created_at,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class TicketDetailView(APIView):
    @extend_schema(
        summary="A ticket with its messages",
        parameters=[TICKET_ID_PARAMETER],
        responses={200: TicketWithDraftSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, ticket_id: str) -> Response:
        ticket = _ticket_from_path(ticket_id)
        return Response(TicketWithDraftSerializer(ticket).data)


class TicketMessageCreateView(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="Add a customer (or agent) message to a ticket",
        parameters=[TICKET_ID_PARAMETER, IDEMPOTENCY_KEY_PARAMETER],
        request=MessageCreateSerializer,
        responses={
            201: MessageCreatedSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 422),
        },
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        ticket = _ticket_from_path(ticket_id)
        payload = MessageCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        api_key = request_api_key(request)

        def create() -> Response:
            message = message_add(
                ticket=ticket,
                author_kind=data["author_kind"],
                body=data["body"],
                channel=Channel.API,
                actor=Actor.for_api_key(api_key),
            )
            ticket.refresh_from_db(fields=["status"])
            message.ticket_status = ticket.status  # type: ignore[attr-defined]
            return Response(MessageCreatedSerializer(message).data, status=status.HTTP_201_CREATED)

        return idempotent(request, create)
