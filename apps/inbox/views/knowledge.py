"""The knowledge panel: search the knowledge base from a ticket, read an article."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.copilot.search import knowledge_search as knowledge_search_aware
from apps.core.exceptions import ValidationError
from apps.inbox.access import inbox_login_required
from apps.knowledge.selectors import (
    SearchHit,
    article_get,
    articles_by_external_id,
)

RESULTS = 5


def knowledge_results(query: str) -> tuple[list[SearchHit], str]:
    """Hits for the agent's query, or an error message to show next to the search field."""
    if not query.strip():
        return [], ""
    try:
        return knowledge_search_aware(query=query, k=RESULTS)[0], ""
    except ValidationError as error:
        return [], error.message


@inbox_login_required
def knowledge_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("kq", "")
    hits, error = knowledge_results(query)
    return render(
        request,
        "inbox/_knowledge_hits.html",
        {"knowledge_query": query, "knowledge_hits": hits, "knowledge_error": error},
    )


@inbox_login_required
def knowledge_article(request: HttpRequest, source: str, external_id: str) -> HttpResponse:
    article = article_get(source_name=source, external_id=external_id)
    if article is None:
        raise Http404("no such article")
    return render(request, "inbox/article.html", {"article": article})


@inbox_login_required
def knowledge_article_by_id(request: HttpRequest, article_id: int) -> HttpResponse:
    """A cited article (drafts cite by article id and external id)."""
    external_id = request.GET.get("external_id", "")
    article = articles_by_external_id(external_ids=[external_id]).get(external_id)
    if article is None or article.pk != article_id:
        raise Http404("no such article")
    return render(request, "inbox/article.html", {"article": article})
