"""The copilot's draft on the ticket page: accept, edit then send, reject, regenerate, the
live stream of a draft being written, and taking a ticket over from the copilot."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_POST

from apps.copilot.models import Draft
from apps.copilot.selectors import draft_current_for_ticket
from apps.copilot.services import (
    draft_regenerate_request,
    ticket_assist_set,
    ticket_handback,
    ticket_takeover,
)
from apps.copilot.streaming import draft_stream_response
from apps.core.exceptions import ConflictError, ServiceUnavailableError
from apps.feedback.drafts import draft_reject_recorded, draft_send_recorded
from apps.inbox.access import InboxRequest, inbox_login_required
from apps.inbox.forms import (
    AssistForm,
    DraftEditForm,
    DraftRejectForm,
    SeenStateForm,
)
from apps.inbox.views.ticket import _perform, _ticket_or_404
from apps.tickets.models import Ticket


def _draft_of(ticket: Ticket, draft_id: int) -> Draft:
    """The ticket's current draft, if it is the one the agent saw; else a conflict."""
    draft = draft_current_for_ticket(ticket_id=ticket.pk)
    if draft is None or draft.pk != draft_id:
        raise ConflictError(
            "the draft you saw was replaced by a newer one; review the new draft",
            field="draft_id",
        )
    return draft


@require_POST
@inbox_login_required
def draft_edit_send(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        recorded = draft_send_recorded(
            draft=_draft_of(ticket, data["draft_id"]), user=request.user, body=data["body"]
        )
        if recorded.kind == "accepted":
            return "Draft sent as written."
        return f"Edited draft sent ({recorded.edit_distance} {recorded.edit_unit}s changed)."

    return _perform(
        request, ticket_id, form=DraftEditForm(request.POST), form_name="draft", action=action
    )


@require_POST
@inbox_login_required
def draft_reject_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        draft_reject_recorded(
            draft=_draft_of(ticket, data["draft_id"]), user=request.user, reason=data["reason"]
        )
        return "Draft rejected; nothing was sent. Write your own reply below."

    return _perform(
        request,
        ticket_id,
        form=DraftRejectForm(request.POST),
        form_name="draft_reject",
        action=action,
    )


@require_POST
@inbox_login_required
def draft_regenerate_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        draft_regenerate_request(ticket=ticket, actor=request.user)
        return "A new draft is being written: it appears here when it is ready."

    return _perform(
        request, ticket_id, form=SeenStateForm(request.POST), form_name="draft", action=action
    )


@require_POST
@inbox_login_required
def ticket_take_over_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        ticket_takeover(ticket=ticket, actor=request.user)
        return (
            "You took over this ticket: the copilot sends nothing on its own until you hand "
            "it back (it still drafts replies for you)."
        )

    return _perform(
        request, ticket_id, form=SeenStateForm(request.POST), form_name="takeover", action=action
    )


@require_POST
@inbox_login_required
def ticket_hand_back_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        ticket_handback(ticket=ticket, actor=request.user)
        return "Handed back: the copilot may answer on its own from the customer's next message."

    return _perform(
        request, ticket_id, form=SeenStateForm(request.POST), form_name="takeover", action=action
    )


@require_POST
@inbox_login_required
def ticket_assist_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    """Switch the copilot's drafts for this ticket on or off (`enabled`: "1" or "0")."""

    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        enabled = data["enabled"]
        ticket_assist_set(ticket=ticket, actor=request.user, enabled=enabled)
        if enabled:
            return "Drafts on: the copilot drafts a reply to the customer's next message."
        return "Drafts off: the copilot drafts nothing more for this ticket."

    return _perform(
        request, ticket_id, form=AssistForm(request.POST), form_name="takeover", action=action
    )


@inbox_login_required
def draft_stream(request: InboxRequest, ticket_id: int) -> HttpResponse | StreamingHttpResponse:
    """The draft being written, as Server-Sent Events (start, delta, reset, final)."""
    ticket = _ticket_or_404(ticket_id)
    try:
        return draft_stream_response(request, ticket.pk)
    except ServiceUnavailableError as error:
        # The page's EventSource retries on its own.
        return HttpResponse(error.message, status=503, content_type="text/plain")
