"""The copilot's draft of a ticket: live stream (Server-Sent Events) and regenerate."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.openapi import error_responses
from apps.api.serializers.drafts import RegenerateQueuedSerializer
from apps.api.views.tickets import TICKET_ID_PARAMETER, _ticket_from_path
from apps.copilot.services import draft_regenerate_request
from apps.copilot.streaming import draft_stream_response
from apps.core.rest import EventStreamRenderer


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
