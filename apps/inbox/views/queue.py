"""The queue page, and its rows alone for htmx polling."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts.models import User
from apps.inbox.access import InboxRequest, inbox_login_required
from apps.inbox.queue import BANDS, VIEWS, QueueFilters, queue_counts, queue_tickets
from apps.tickets.models import Channel, TicketStatus
from apps.triage.selectors import intent_example_counts

PAGE_SIZE = 50
SESSION_QUEUE_IDS = "inbox_queue_ids"
SESSION_QUEUE_QUERY = "inbox_queue_query"


@inbox_login_required
def queue_page(request: InboxRequest) -> HttpResponse:
    filters = QueueFilters.from_query(request.GET.dict())
    paginator = Paginator(queue_tickets(filters=filters, user=request.user), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    tickets = list(page.object_list)
    # The ticket page's j/k move through the queue the agent was looking at. Written only
    # when it changed: the rows are polled every few seconds.
    ids = [ticket.pk for ticket in tickets]
    query = urlencode(filters.as_query())
    if request.session.get(SESSION_QUEUE_IDS) != ids:
        request.session[SESSION_QUEUE_IDS] = ids
    if request.session.get(SESSION_QUEUE_QUERY) != query:
        request.session[SESSION_QUEUE_QUERY] = query
    counts = queue_counts(user=request.user)
    base_query = {k: v for k, v in filters.as_query().items() if k != "view"}
    rows_only = bool(request.htmx and request.GET.get("rows"))
    context = {
        "filters": filters,
        "page": page,
        "tickets": tickets,
        "views": [
            {
                "slug": view.slug,
                "label": view.label,
                "count": counts[view.slug],
                "query": urlencode({**base_query, "view": view.slug}),
            }
            for view in VIEWS
        ],
        "query": query,
        # Reversed once, not once per row.
        "ticket_url_prefix": reverse("inbox:ticket", args=[0]).removesuffix("0/"),
    }
    if not rows_only:
        context.update(
            {
                "statuses": TicketStatus.choices,
                "channels": Channel.choices,
                "bands": [(slug, label) for slug, (label, _) in BANDS.items()],
                "agents": User.objects.filter(is_active=True).order_by("username"),
                "intents": sorted(intent_example_counts()),
            }
        )
    template = "inbox/_queue_rows.html" if rows_only else "inbox/queue.html"
    return render(request, template, context)
