"""The ticket page and the agent's actions on it.

Every action is a plain form POST (CSRF-protected) that htmx merely enhances. Each form
carries the version of the ticket the agent saw; if the ticket changed since (another agent,
the customer, the copilot), nothing is done and the page says what changed, keeping the
agent's typed reply. The services' own compare-and-set errors are shown the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.access import request_user
from apps.accounts.models import User
from apps.copilot.models import DraftStatus
from apps.copilot.selectors import (
    draft_current_for_ticket,
    policy_effective,
    ticket_assist_is_off,
    ticket_is_taken_over,
)
from apps.copilot.streaming import stream_resume_point
from apps.core.exceptions import DeskpilotError, NotFoundError
from apps.feedback.services import ticket_intent_correct
from apps.inbox.access import InboxRequest, inbox_login_required
from apps.inbox.actions import note_add, reply_send
from apps.inbox.forms import (
    AssignForm,
    DraftEditForm,
    DraftRejectForm,
    IntentForm,
    ReasonForm,
    ReplyForm,
    SeenStateForm,
    ticket_version,
)
from apps.inbox.views.knowledge import knowledge_results
from apps.inbox.views.queue import SESSION_QUEUE_IDS, SESSION_QUEUE_QUERY
from apps.tickets.macros import macros_for
from apps.tickets.models import AuthorKind, Message, PipelineStatus, Ticket, TicketStatus
from apps.tickets.selectors import message_list, ticket_get, ticket_list
from apps.tickets.services import Actor, ticket_assign, ticket_reopen, ticket_resolve
from apps.triage.selectors import intent_example_counts

logger = logging.getLogger(__name__)

PREVIOUS_TICKETS_SHOWN = 10
# The customer's latest message is still on its way through the copilot pipeline.
DRAFTING_STATUSES = (
    PipelineStatus.UNSCHEDULED,
    PipelineStatus.QUEUED,
    PipelineStatus.AWAITING_TRIAGE,
    PipelineStatus.PROCESSING,
)


def _ticket_or_404(ticket_id: int) -> Ticket:
    try:
        return ticket_get(ticket_id=ticket_id)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _last_message_id(ticket: Ticket) -> int:
    last = message_list(ticket=ticket).values_list("id", flat=True).last()
    return last or 0


def _neighbours(request: HttpRequest, ticket_id: int) -> tuple[int | None, int | None]:
    ids: list[int] = request.session.get(SESSION_QUEUE_IDS) or []
    if ticket_id not in ids:
        return None, None
    index = ids.index(ticket_id)
    previous = ids[index - 1] if index > 0 else None
    following = ids[index + 1] if index + 1 < len(ids) else None
    return previous, following


def _intent_names() -> list[str]:
    return sorted(intent_example_counts())


def _draft_stream_url(ticket: Ticket, latest: Message | None) -> str:
    """The ticket's draft stream from where this page leaves it: a draft being written, a
    regenerated one or the next message's appear live. "" when Redis cannot say (the page
    then shows drafts on reload only)."""
    try:
        after = stream_resume_point(
            ticket_id=ticket.pk, message_id=latest.pk if latest is not None else None
        )
    except Exception:
        logger.warning("draft stream position of ticket %s unknown", ticket.pk, exc_info=True)
        return ""
    return f"{reverse('inbox:draft-stream', args=[ticket.pk])}?after={after}"


def ticket_context(
    request: HttpRequest, ticket: Ticket, *, forms: dict[str, Any] | None = None
) -> dict[str, Any]:
    conversation: list[Message] = list(
        message_list(ticket=ticket).select_related("author_user", "outbound_email")
    )
    last_message_id = conversation[-1].pk if conversation else 0
    seen = SeenStateForm.initial_for(ticket, last_message_id)
    forms = forms or {}
    previous_id, next_id = _neighbours(request, ticket.pk)
    draft = draft_current_for_ticket(ticket_id=ticket.pk)
    taken_over = ticket_is_taken_over(ticket_id=ticket.pk)
    assist_off = ticket_assist_is_off(ticket_id=ticket.pk)
    customer_messages = [m for m in conversation if m.author_kind == AuthorKind.CUSTOMER]
    latest = customer_messages[-1] if customer_messages else None
    drafting = bool(
        latest is not None
        and latest.pipeline_status in DRAFTING_STATUSES
        and (draft is None or draft.message_id != latest.pk)
        and not assist_off
    )
    draft_ids = {**seen, "draft_id": draft.pk if draft else 0}
    draft_stream_url = _draft_stream_url(ticket, latest)
    knowledge_query = request.GET.get("kq", "")[:2000]
    knowledge_hits, knowledge_error = knowledge_results(knowledge_query)
    return {
        "ticket": ticket,
        "conversation": conversation,
        "events": list(ticket.events.order_by("-id")[:20]),
        "previous_tickets": list(
            ticket_list()
            .filter(customer_id=ticket.customer_id)
            .exclude(pk=ticket.pk)
            .order_by("-created_at")[:PREVIOUS_TICKETS_SHOWN]
        ),
        "version": seen["version"],
        "seen": seen,
        "reply_form": forms.get("reply") or ReplyForm(initial=seen),
        "assign_form": forms.get("assign")
        or AssignForm(initial={**seen, "assignee": ticket.assignee_id}),
        "reason_form": ReasonForm(initial=seen),
        "intent_form": forms.get("intent")
        or IntentForm(initial={**seen, "intent": ticket.intent}, intents=_intent_names()),
        "knowledge_query": knowledge_query,
        "knowledge_hits": knowledge_hits,
        "knowledge_error": knowledge_error,
        "is_open": ticket.status != TicketStatus.RESOLVED,
        "draft": draft,
        "draft_pending": draft is not None and draft.status == DraftStatus.PENDING,
        "drafting": drafting,
        "taken_over": taken_over,
        "assist_off": assist_off,
        "draft_stream_url": draft_stream_url,
        "macros": macros_for(ticket=ticket, agent=request_user(request)),
        "auto_send_threshold": policy_effective().auto_send_threshold if draft else None,
        "draft_edit_form": forms.get("draft_edit")
        or DraftEditForm(initial={**draft_ids, "body": draft.body if draft else ""}),
        "draft_reject_form": forms.get("draft_reject") or DraftRejectForm(initial=draft_ids),
        "previous_ticket_id": previous_id,
        "next_ticket_id": next_id,
        "queue_query": request.session.get(SESSION_QUEUE_QUERY, ""),
    }


@inbox_login_required
def ticket_page(request: InboxRequest, ticket_id: int) -> HttpResponse:
    ticket = _ticket_or_404(ticket_id)
    return render(request, "inbox/ticket.html", ticket_context(request, ticket))


@inbox_login_required
def ticket_changes(request: InboxRequest, ticket_id: int) -> HttpResponse:
    """Polled by the ticket page: a notice when the ticket changed since it was rendered."""
    ticket = _ticket_or_404(ticket_id)
    seen_version = request.GET.get("version", "")
    try:
        seen_message_id = int(request.GET.get("seen_message_id", "0"))
    except ValueError:
        seen_message_id = 0
    changes = (
        []
        if seen_version == ticket_version(ticket, _last_message_id(ticket))
        else _changes(
            ticket,
            seen_status=request.GET.get("seen_status", ticket.status),
            seen_message_id=seen_message_id,
        )
    )
    return render(request, "inbox/_ticket_changes.html", {"ticket": ticket, "changes": changes})


def _changes(ticket: Ticket, *, seen_status: str, seen_message_id: int) -> list[str]:
    """What changed since the agent loaded the page, in words."""
    changes: list[str] = []
    new_messages = message_list(ticket=ticket, after_id=seen_message_id).count()
    if new_messages:
        changes.append(f"{new_messages} new message{'s' if new_messages > 1 else ''}")
    if seen_status != ticket.status:
        seen_label = dict(TicketStatus.choices).get(seen_status, seen_status)
        changes.append(f"status changed from {seen_label} to {ticket.get_status_display()}")
    if not changes:
        assignee = ticket.assignee.get_username() if ticket.assignee else "nobody"
        changes.append(f"it was updated (now assigned to {assignee})")
    return changes


def _perform(
    request: HttpRequest,
    ticket_id: int,
    *,
    form: SeenStateForm,
    form_name: str,
    action: Callable[[Ticket, dict[str, Any]], str],
) -> HttpResponse:
    """Validate, check the version, run the action in a transaction, redirect or explain."""
    ticket = _ticket_or_404(ticket_id)
    if not form.is_valid():
        context = ticket_context(request, ticket, forms={form_name: form})
        return render(request, "inbox/ticket.html", context, status=422)
    data = form.cleaned_data
    if data["version"] != ticket_version(ticket, _last_message_id(ticket)):
        changes = _changes(
            ticket, seen_status=data["seen_status"], seen_message_id=data["seen_message_id"]
        )
        return _conflict(
            request,
            ticket,
            form=form,
            form_name=form_name,
            text=(
                f"Ticket #{ticket.pk} changed while you were looking at it: "
                f"{'; '.join(changes)}. Nothing was done: check the latest state and try again."
            ),
        )
    try:
        with transaction.atomic():
            done = action(ticket, data)
    except DeskpilotError as error:
        return _conflict(
            request,
            _ticket_or_404(ticket_id),
            form=form,
            form_name=form_name,
            text=f"Nothing was done: {error.message}",
            status=error.status_code,
        )
    messages.success(request, done)
    return redirect(reverse("inbox:ticket", args=[ticket.pk]))


def _conflict(
    request: HttpRequest,
    ticket: Ticket,
    *,
    form: SeenStateForm,
    form_name: str,
    text: str,
    status: int = 409,
) -> HttpResponse:
    messages.error(request, text)
    # The page shows the ticket as it is now, with the agent's typed text kept but the
    # version refreshed: sending again is a deliberate second decision.
    fresh: dict[str, Any] = {}
    seen = SeenStateForm.initial_for(ticket, _last_message_id(ticket))
    if form_name == "reply":
        fresh["reply"] = ReplyForm(initial={**seen, "body": form.data.get("body", "")})
    elif form_name == "draft" and "body" in form.data:
        # The agent's edit is kept: in the draft box if a draft is still pending, else in
        # the reply box (the draft they edited was sent, rejected or replaced meanwhile).
        current = draft_current_for_ticket(ticket_id=ticket.pk)
        typed = form.data.get("body", "")
        if current is not None and current.status == DraftStatus.PENDING:
            fresh["draft_edit"] = DraftEditForm(
                initial={**seen, "draft_id": current.pk, "body": typed}
            )
        else:
            fresh["reply"] = ReplyForm(initial={**seen, "body": typed})
    context = ticket_context(request, ticket, forms=fresh)
    return render(request, "inbox/ticket.html", context, status=status)


def _actor(request: InboxRequest) -> Actor:
    return Actor.for_user(request.user)


@require_POST
@inbox_login_required
def ticket_reply(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        if data.get("as_note"):
            note_add(ticket=ticket, body=data["body"], user=request.user)
            return "Internal note saved: the customer does not see it."
        reply_send(ticket=ticket, body=data["body"], user=request.user)
        return "Reply sent."

    return _perform(
        request, ticket_id, form=ReplyForm(request.POST), form_name="reply", action=action
    )


@require_POST
@inbox_login_required
def ticket_assign_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        assignee: User | None = data["assignee"]
        ticket_assign(ticket=ticket, assignee=assignee, actor=_actor(request))
        return f"Assigned to {assignee.get_username()}." if assignee else "Unassigned."

    return _perform(
        request, ticket_id, form=AssignForm(request.POST), form_name="assign", action=action
    )


@require_POST
@inbox_login_required
def ticket_assign_me(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        ticket_assign(ticket=ticket, assignee=request.user, actor=_actor(request))
        return "Assigned to you."

    return _perform(
        request, ticket_id, form=SeenStateForm(request.POST), form_name="assign", action=action
    )


@require_POST
@inbox_login_required
def ticket_resolve_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        ticket_resolve(ticket=ticket, actor=_actor(request), reason=data.get("reason", ""))
        return "Ticket resolved."

    return _perform(
        request, ticket_id, form=ReasonForm(request.POST), form_name="resolve", action=action
    )


@require_POST
@inbox_login_required
def ticket_reopen_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        ticket_reopen(ticket=ticket, actor=_actor(request), reason=data.get("reason", ""))
        return "Ticket reopened."

    return _perform(
        request, ticket_id, form=ReasonForm(request.POST), form_name="reopen", action=action
    )


@require_POST
@inbox_login_required
def ticket_intent_view(request: InboxRequest, ticket_id: int) -> HttpResponse:
    def action(ticket: Ticket, data: dict[str, Any]) -> str:
        ticket_intent_correct(ticket=ticket, intent=data["intent"], user=request.user)
        return f"Intent changed to {data['intent']}; triage will learn from it."

    form = IntentForm(request.POST, intents=_intent_names())
    return _perform(request, ticket_id, form=form, form_name="intent", action=action)
