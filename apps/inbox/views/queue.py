"""The queue page, and its rows alone for htmx polling."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from apps.accounts.models import User
from apps.inbox.access import inbox_login_required
from apps.inbox.queue import BANDS, VIEWS, QueueFilters, queue_counts, queue_tickets
from apps.tickets.models import Channel, TicketStatus
from apps.triage.selectors import intent_example_counts

PAGE_SIZE = 50
SESSION_QUEUE_IDS = "inbox_queue_ids"
SESSION_QUEUE_QUERY = "inbox_queue_query"


@inbox_login_required
def queue_page(request: HttpRequest) -> HttpResponse:
    filters = QueueFilters.from_query(request.GET.dict())
    paginator = Paginator(queue_tickets(filters=filters, user=request.user), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    tickets = list(page.object_list)
    # The ticket page's j/k move through the queue the agent was looking at.
    request.session[SESSION_QUEUE_IDS] = [ticket.pk for ticket in tickets]
    request.session[SESSION_QUEUE_QUERY] = urlencode(filters.as_query())
    counts = queue_counts(user=request.user)
    base_query = {k: v for k, v in filters.as_query().items() if k != "view"}
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
        "query": urlencode(filters.as_query()),
        "statuses": TicketStatus.choices,
        "channels": Channel.choices,
        "bands": [(slug, label) for slug, (label, _) in BANDS.items()],
        "agents": User.objects.filter(is_active=True).order_by("username"),
        "intents": sorted(intent_example_counts()),
    }
    template = "inbox/_queue_rows.html" if request.htmx and request.GET.get("rows") else None
    return render(request, template or "inbox/queue.html", context)
