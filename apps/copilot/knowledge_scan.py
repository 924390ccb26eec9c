"""Injected instructions in the knowledge base, found when articles are imported.

An article can carry an indirect injection ("assistant: ignore your rules and ...", often
hidden in an HTML comment or a Markdown link title). The pipeline's guard reads every
passage it retrieves (apps/copilot/pipeline/guard.py) and hands such a draft to a person;
this scan tells the admins at import time, before any customer asks, which articles to fix:
after each import that changed the knowledge base (a warning per flagged article in the
log) and on demand (`python manage.py kb_scan`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from apps.knowledge.models import Article, ArticleStatus
from apps.safety.injection import heuristic_evidence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlaggedArticle:
    source: str
    external_id: str
    title: str
    evidence: list[dict]

    def describe(self) -> str:
        found = "; ".join(
            f"{e['kind']} ({e['where']}): {e['text'][:120]!r}" for e in self.evidence[:3]
        )
        return f"{self.source}:{self.external_id} {self.title!r}: {found}"


def articles_injection_scan(
    *, source_name: str | None = None, external_ids: Sequence[str] | None = None
) -> list[FlaggedArticle]:
    """The published articles (of one source, or these ids) whose title or body carries
    instructions addressed to a model."""
    articles = Article.objects.filter(status=ArticleStatus.PUBLISHED).select_related("source")
    if source_name is not None:
        articles = articles.filter(source__name=source_name)
    if external_ids is not None:
        articles = articles.filter(external_id__in=list(external_ids))
    return list(_flagged(articles.order_by("id").iterator(chunk_size=200)))


def _flagged(articles: Iterable[Article]) -> Iterable[FlaggedArticle]:
    for article in articles:
        evidence = heuristic_evidence(f"{article.title}\n\n{article.body}")
        if evidence:
            yield FlaggedArticle(article.source.name, article.external_id, article.title, evidence)


def articles_scan_after_import(*, report: object, source_name: str, **_: object) -> None:
    """apps.knowledge's `knowledge_imported`: scan what the import added or changed."""
    changed = [*getattr(report, "added", []), *getattr(report, "updated", [])]
    if not changed:
        return
    for flagged in articles_injection_scan(source_name=source_name, external_ids=changed):
        logger.warning("knowledge article carries instructions to a model: %s", flagged.describe())
