"""The copilot's draft of a ticket: live stream (Server-Sent Events), regenerate, and send
or reject it from another agent tool (a helpdesk bridge), so its feedback counts too."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.authentication import request_api_key
from apps.api.openapi import error_responses
from apps.api.serializers.drafts import (
    DraftActedSerializer,
    DraftRejectSerializer,
    DraftSendSerializer,
    RegenerateQueuedSerializer,
)
from apps.api.views.tickets import TICKET_ID_PARAMETER, _ticket_from_path
from apps.copilot.models import Draft, DraftStatus
from apps.copilot.selectors import draft_current_for_ticket
from apps.copilot.services import draft_regenerate_request
from apps.copilot.streaming import draft_stream_response
from apps.core.exceptions import ConflictError, NotFoundError
from apps.core.rest import EventStreamRenderer, StrictJSONParser
from apps.feedback.drafts import draft_reject_recorded, draft_send_recorded
from apps.feedback.models import DraftAction
from apps.tickets.services import Actor


class DraftStreamView(APIView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        summary="The ticket's draft as it is written (Server-Sent Events)",
        description=(
            "Events: `start`, `audience` (data.customer: the draft is on course to be sent "
            "on its own), `delta` (data.text: the next piece of the reply), `reset` (the "
            "text so far is void), `final` (data.draft_id, decision, reason: the stream "
            "ends). A late subscriber first gets the events of the current draft so far. "
            "Comment lines are heartbeats."
        ),
        parameters=[TICKET_ID_PARAMETER],
        responses={
            (200, "text/event-stream"): OpenApiResponse(description="An event stream"),
            **error_responses(401, 403, 404),
        },
    )
    def get(self, request: Request, ticket_id: str) -> StreamingHttpResponse:
        ticket = _ticket_from_path(ticket_id)

        return draft_stream_response(request, ticket.pk)


class DraftRegenerateView(APIView):
    @extend_schema(
        summary="Draft the reply to the ticket's latest customer message again",
        description=(
            "Queues the new draft and answers at once (202): the model writes it on a worker. "
            "Follow it on `GET /api/v1/tickets/{id}/draft/stream` (its `final` event carries "
            "the new draft's id) or read it from `GET /api/v1/tickets/{id}`. The previous draft "
            "is kept as superseded. The new one is never sent on its own: an agent sends or "
            "rejects it. 503 when the task could not be queued (try again)."
        ),
        parameters=[TICKET_ID_PARAMETER],
        request=None,
        responses={202: RegenerateQueuedSerializer, **error_responses(401, 403, 404, 503)},
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        ticket = _ticket_from_path(ticket_id)
        message = draft_regenerate_request(ticket=ticket, actor=None)
        body = {
            "ticket_id": ticket.pk,
            "message_id": message.pk,
            "status": "queued",
            "stream": f"/api/v1/tickets/{ticket.pk}/draft/stream",
        }
        return Response(RegenerateQueuedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


def _pending_draft(ticket_id: int) -> Draft:
    draft = draft_current_for_ticket(ticket_id=ticket_id)
    if draft is None:
        raise NotFoundError(f"ticket {ticket_id} has no draft", field="ticket_id")
    if draft.status != DraftStatus.PENDING:
        raise ConflictError(
            f"the ticket's current draft (#{draft.pk}) is {draft.status}; only a pending draft "
            "can be sent or rejected"
        )
    return draft


def _acted(action: DraftAction) -> Response:
    body = {
        "draft_id": action.draft_id,
        "status": Draft.objects.values_list("status", flat=True).get(pk=action.draft_id),
        "action": action.kind,
        "sent_message_id": action.sent_message_id,
        "edit_ratio": action.edit_ratio,
    }
    return Response(DraftActedSerializer(body).data)


class DraftSendView(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="Send the ticket's pending draft, as drafted or as your agent edited it",
        description=(
            "For agents working in another tool: the reply goes to the customer (by email for "
            "an email ticket) and the copilot learns from it as from an inbox send (accepted "
            "unchanged, or edited with its edit distance; a heavily edited draft is flagged for "
            "review; it becomes a gold-set candidate). 409 when the draft is no longer pending."
        ),
        parameters=[TICKET_ID_PARAMETER],
        request=DraftSendSerializer,
        responses={200: DraftActedSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        ticket = _ticket_from_path(ticket_id)
        payload = DraftSendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        action = draft_send_recorded(
            draft=_pending_draft(ticket.pk),
            user=None,
            body=data.get("body"),
            via=Actor.for_api_key(request_api_key(request)),
            by=data["agent"],
        )
        return _acted(action)


class DraftRejectView(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="Reject the ticket's pending draft, with your agent's reason",
        description="Nothing is sent; the draft is flagged for review with the reason.",
        parameters=[TICKET_ID_PARAMETER],
        request=DraftRejectSerializer,
        responses={200: DraftActedSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        ticket = _ticket_from_path(ticket_id)
        payload = DraftRejectSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        action = draft_reject_recorded(
            draft=_pending_draft(ticket.pk), user=None, reason=data["reason"], by=data["agent"]
        )
        return _acted(action)
