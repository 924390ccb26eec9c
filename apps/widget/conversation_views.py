"""Widget endpoints the chat UI needs beyond messages: thumbs, "talk to a human", CSAT.

Same rules as `views.py`: the widget key and the Origin are checked first, and the visitor
token proves the conversation is theirs. All answers use the API's error shape.
"""

from __future__ import annotations

from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.copilot.streaming import customer_stream_events, sse_response
from apps.core.exceptions import NotFoundError
from apps.core.rest import (
    EventStreamRenderer,
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
)
from apps.feedback.models import RatingValue
from apps.feedback.services import csat_record, reply_rate
from apps.tickets.models import ActorKind, Message, TicketStatus
from apps.tickets.selectors import message_list_for_customer
from apps.tickets.services import Actor, ticket_handoff
from apps.widget.views import (
    HasVisitor,
    VisitorTokenAuthentication,
    WidgetView,
    request_visitor,
    visitor_ticket,
)

HUMAN_REQUESTED_REASON = "the customer asked for a human"
STREAM_TIMEOUT_SECONDS = 60.0
HEARTBEAT_SECONDS = 10.0


class RatingSerializer(StrictSerializer):
    value = StrictChoiceField(choices=RatingValue.values)


class CsatSerializer(StrictSerializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = StrictCharField(required=False, allow_blank=True, max_length=2000)

    def to_internal_value(self, data: object) -> object:
        # IntegerField accepts "3" and 3.0; the widget sends a JSON number, so only that passes.
        if isinstance(data, dict) and (
            isinstance(data.get("score"), bool) or not isinstance(data.get("score"), int)
        ):
            raise serializers.ValidationError({"score": ["must be a whole number from 1 to 5"]})
        return super().to_internal_value(data)


class VisitorView(WidgetView):
    authentication_classes = [VisitorTokenAuthentication]
    permission_classes = [HasVisitor]
    allowed_methods_for_cors = "POST, OPTIONS"


@extend_schema(exclude=True)
class MessageRatingView(VisitorView):
    def post(self, request: Request, public_key: str, message_id: int) -> Response:
        payload = RatingSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ticket = visitor_ticket(request_visitor(request))
        message: Message | None = (
            message_list_for_customer(ticket=ticket).filter(pk=message_id).first()
        )
        if message is None:
            raise NotFoundError("no such message in this conversation", field="message_id")
        rating = reply_rate(message=message, value=payload.validated_data["value"])
        return Response({"message_id": message.pk, "value": rating.value})


@extend_schema(exclude=True)
class HumanRequestView(VisitorView):
    """ "Talk to a human": hands the conversation to the team. Asking twice is harmless."""

    def post(self, request: Request, public_key: str) -> Response:
        visitor = request_visitor(request)
        ticket = visitor_ticket(visitor)
        if ticket.status != TicketStatus.HANDED_OFF:
            with transaction.atomic():
                ticket = ticket_handoff(
                    ticket=ticket,
                    actor=Actor(ActorKind.CUSTOMER, str(visitor.customer_id)),
                    reason=HUMAN_REQUESTED_REASON,
                )
        return Response({"conversation_id": ticket.pk, "status": ticket.status})


@extend_schema(exclude=True)
class CsatView(VisitorView):
    def post(self, request: Request, public_key: str) -> Response:
        payload = CsatSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ticket = visitor_ticket(request_visitor(request))
        rating = csat_record(
            ticket=ticket,
            score=payload.validated_data["score"],
            comment=payload.validated_data.get("comment", ""),
        )
        return Response({"score": rating.score}, status=status.HTTP_200_OK)


@extend_schema(exclude=True)
class ConversationStreamView(VisitorView):
    """What the copilot is doing on this conversation, as Server-Sent Events: `delta` pieces
    of a reply on course to be sent on its own (`typing` for any other draft, whose text an
    agent may still change or reject), then `message` (the reply was sent), or `retract`
    (the text shown was not sent) and `handed_off` / `needs_review` (a person will answer).
    """

    allowed_methods_for_cors = "GET, OPTIONS"
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def get(self, request: Request, public_key: str) -> StreamingHttpResponse:
        ticket = visitor_ticket(request_visitor(request))

        return sse_response(
            request,
            customer_stream_events(
                ticket_id=ticket.pk,
                timeout=STREAM_TIMEOUT_SECONDS,
                heartbeat=HEARTBEAT_SECONDS,
            ),
        )
