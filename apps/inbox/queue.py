"""The agent's queue: which tickets, in which order, with counts per view.

Built on `tickets.selectors.ticket_list`; the inbox only narrows and orders it. Tickets that
need a human (`needs_review`, `handed_off`) come first, then new, then awaiting the customer,
then resolved; within a group urgent ones first, then the most recently active.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from apps.accounts.models import User
from apps.core.text import ascii_digits
from apps.tickets.models import Channel, Ticket, TicketPriority, TicketStatus
from apps.tickets.selectors import ticket_list
from apps.tickets.sla import SLA_RUNNING

NEEDS_HUMAN = (TicketStatus.NEEDS_REVIEW, TicketStatus.HANDED_OFF)
SEARCH_MAX_CHARS = 200


@dataclass(frozen=True)
class QueueView:
    slug: str
    label: str


VIEWS = (
    QueueView("needs_human", "Needs a human"),
    QueueView("mine", "Mine"),
    QueueView("unassigned", "Unassigned"),
    QueueView("open", "Open"),
    QueueView("resolved", "Resolved"),
    QueueView("all", "All"),
)
VIEW_SLUGS = frozenset(view.slug for view in VIEWS)
DEFAULT_VIEW = "open"

# Confidence bands, on the ticket's confidence (the triage confidence until drafts exist).
BANDS = {
    "high": ("High (≥ 0.8)", Q(intent_confidence__gte=0.8)),
    "medium": ("Medium (0.5-0.8)", Q(intent_confidence__gte=0.5, intent_confidence__lt=0.8)),
    "low": ("Low (< 0.5)", Q(intent_confidence__lt=0.5)),
    "none": ("None", Q(intent_confidence__isnull=True)),
}


@dataclass
class QueueFilters:
    """What the agent asked for; unknown values are dropped and reported in `ignored`."""

    view: str = DEFAULT_VIEW
    status: str = ""
    intent: str = ""
    channel: str = ""
    assignee: str = ""  # "me", "none" or a user id
    band: str = ""
    search: str = ""
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query: dict[str, str]) -> QueueFilters:
        filters = cls()
        view = query.get("view", "") or DEFAULT_VIEW
        if view in VIEW_SLUGS:
            filters.view = view
        else:
            filters.ignored.append("view")
        checks = {
            "status": lambda v: v in TicketStatus.values,
            "channel": lambda v: v in Channel.values,
            "band": lambda v: v in BANDS,
            "assignee": lambda v: v in ("me", "none") or (ascii_digits(v) and len(v) < 19),
            "intent": lambda v: len(v) <= 100,
        }
        for name, is_valid in checks.items():
            value = query.get(name, "").strip()
            if value and is_valid(value):
                setattr(filters, name, value)
            elif value:
                filters.ignored.append(name)
        filters.search = query.get("q", "").replace("\x00", "").strip()[:SEARCH_MAX_CHARS]
        return filters

    def as_query(self) -> dict[str, str]:
        pairs = {
            "view": self.view,
            "status": self.status,
            "intent": self.intent,
            "channel": self.channel,
            "assignee": self.assignee,
            "band": self.band,
            "q": self.search,
        }
        return {name: value for name, value in pairs.items() if value}


def _view_q(view: str, user: User) -> Q:
    open_q = ~Q(status=TicketStatus.RESOLVED)
    return {
        "needs_human": Q(status__in=NEEDS_HUMAN),
        "mine": open_q & Q(assignee=user),
        "unassigned": open_q & Q(assignee__isnull=True),
        "open": open_q,
        "resolved": Q(status=TicketStatus.RESOLVED),
        "all": Q(),
    }[view]


def _search_q(search: str) -> Q:
    text = search.removeprefix("#")
    condition = (
        Q(subject__icontains=search)
        | Q(customer__email__icontains=search)
        | Q(customer__name__icontains=search)
    )
    if ascii_digits(text) and len(text) < 19:
        condition |= Q(pk=int(text))
    return condition


def queue_tickets(*, filters: QueueFilters, user: User) -> QuerySet[Ticket]:
    tickets = ticket_list(
        status=filters.status or None,
        channel=filters.channel or None,
        intent=filters.intent or None,
    ).select_related("assignee")
    tickets = tickets.filter(_view_q(filters.view, user))
    if filters.assignee == "me":
        tickets = tickets.filter(assignee=user)
    elif filters.assignee == "none":
        tickets = tickets.filter(assignee__isnull=True)
    elif filters.assignee:
        tickets = tickets.filter(assignee_id=int(filters.assignee))
    if filters.band:
        tickets = tickets.filter(BANDS[filters.band][1])
    if filters.search:
        tickets = tickets.filter(_search_q(filters.search))
    now = timezone.now()
    return tickets.annotate(
        # The next service-level target (apps/tickets/sla.py): the first reply until one
        # was sent, then the resolution; overdue tickets the team owes come first.
        next_due=Case(
            When(first_responded_at__isnull=True, then=F("first_response_due_at")),
            default=F("resolution_due_at"),
            output_field=DateTimeField(),
        ),
        overdue_rank=Case(
            When(status__in=SLA_RUNNING, next_due__lt=now, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        status_group=Case(
            When(status__in=NEEDS_HUMAN, then=Value(0)),
            When(status=TicketStatus.NEW, then=Value(1)),
            When(status=TicketStatus.AWAITING_CUSTOMER, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        ),
        priority_rank=Case(
            When(priority=TicketPriority.URGENT, then=Value(0)),
            When(priority=TicketPriority.HIGH, then=Value(1)),
            When(priority=TicketPriority.NORMAL, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        ),
    ).order_by(
        "overdue_rank", "status_group", "priority_rank", F("next_due").asc(nulls_last=True),
        "-updated_at", "-id",
    )  # fmt: skip


def queue_counts(*, user: User) -> dict[str, int]:
    """How many tickets each view holds, in one query."""
    aggregates = {view.slug: Count("id", filter=_view_q(view.slug, user)) for view in VIEWS}
    return ticket_list().aggregate(**aggregates)
