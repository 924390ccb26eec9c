"""Knowledge gaps: questions agents keep answering with no knowledge-base article behind
them, clustered, each with the agents' own answers proposed as a draft article.

Evidence is a customer message whose copilot draft did not reach the customer as drafted
(it was handed off, held for review, rejected, or rewritten: an edit ratio of at least
FEEDBACK_HEAVY_EDIT_RATIO) and that an agent answered in their own words, when nothing in
the published knowledge base is close to that answer (the nearest chunk's cosine similarity
under KNOWLEDGE_GAP_COVERED): an agent who pasted or retold an article found it, a search
problem rather than a gap. Handoffs that say nothing about knowledge (the customer asked
for a person, injection suspected, model down, budget spent, another language) are left
out. The questions are embedded with the knowledge base's model and grouped by
average-linkage agglomerative clustering on cosine distance (scikit-learn), cut at
KNOWLEDGE_GAP_DISTANCE; a group from at least KNOWLEDGE_GAP_MIN_TICKETS tickets is a gap.
A refresh (beat task, idempotent) recomputes the open gaps from the evidence of the last
KNOWLEDGE_GAP_DAYS; gaps an admin turned into a draft article or dismissed are kept, and
their messages are not clustered again.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sklearn.cluster import AgglomerativeClustering

from apps.copilot.models import Draft, DraftStatus, HandoffReason
from apps.core.exceptions import ConflictError, ValidationError
from apps.evaluation.models import GapStatus, KnowledgeGap
from apps.feedback.models import DraftAction, DraftActionKind
from apps.knowledge.models import ArticleStatus
from apps.knowledge.selectors import MAX_QUERY_CHARACTERS, chunk_search
from apps.knowledge.services import article_input_build, articles_push, embeddings_fetch
from apps.safety.logs import text_mask
from apps.safety.pii import Pseudonymiser
from apps.tickets.selectors import agent_replies_to

NOT_ABOUT_KNOWLEDGE = (
    HandoffReason.CUSTOMER_ASKED_HUMAN,
    HandoffReason.INJECTION_SUSPECTED,
    HandoffReason.MODEL_UNAVAILABLE,
    HandoffReason.BUDGET,
    HandoffReason.PIPELINE_FAILED,
    HandoffReason.GUARD_FAILED,
    HandoffReason.LANGUAGE_UNSUPPORTED,
    HandoffReason.NEWER_MESSAGE,
    HandoffReason.AUTO_SEND_PAUSED,
)
GAP_SOURCE = "knowledge-gaps"
QUESTION_CHARS = 1000


def _evidence(since) -> list[dict]:  # type: ignore[no-untyped-def]
    """[{message_id, ticket_id, question, answer, reason, intent, at}] since `since`."""
    closed: set[int] = set()
    for ids in KnowledgeGap.objects.exclude(status=GapStatus.OPEN).values_list(
        "message_ids", flat=True
    ):
        closed.update(ids)
    drafts = (
        Draft.objects.filter(evaluation=False, created_at__gte=since)
        .exclude(message_id__in=closed)
        .select_related("message")
        .order_by("message_id", "-generation")
    )
    actions = {
        a.draft_id: a
        for a in DraftAction.objects.filter(draft__in=drafts).only(
            "draft_id", "kind", "edit_ratio", "sent_body"
        )
    }
    found: dict[int, dict] = {}
    unanswered: dict[int, dict] = {}
    seen: set[int] = set()
    for draft in drafts:
        if draft.message_id in seen:
            continue  # the latest generation decides
        seen.add(draft.message_id)
        action = actions.get(draft.pk)
        row = {
            "message_id": draft.message_id,
            "ticket_id": draft.ticket_id,
            "question": draft.message.body[:QUESTION_CHARS],
            "intent": draft.intent,
            "at": draft.created_at,
        }
        if action is not None and action.kind == DraftActionKind.EDITED:
            if action.edit_ratio >= settings.FEEDBACK_HEAVY_EDIT_RATIO:
                found[draft.message_id] = {**row, "answer": action.sent_body, "reason": "rewritten"}
        elif action is not None and action.kind == DraftActionKind.REJECTED:
            unanswered[draft.message_id] = {**row, "reason": "rejected"}
        elif (
            action is None
            and draft.status != DraftStatus.AUTO_SENT
            and draft.reason not in NOT_ABOUT_KNOWLEDGE
        ):
            unanswered[draft.message_id] = {**row, "reason": draft.reason}
    for message_id, reply in agent_replies_to(message_ids=list(unanswered)).items():
        found[message_id] = {**unanswered[message_id], "answer": reply.body}
    rows = sorted(found.values(), key=lambda row: row["message_id"])
    answers = [row["answer"].strip()[:MAX_QUERY_CHARACTERS] for row in rows]
    # One batch through the embedding cache: each refresh sees mostly the same answers.
    vectors = embeddings_fetch(texts=answers).vectors if rows else []
    return [
        row
        for row, text, vector in zip(rows, answers, vectors, strict=True)
        if not _covered(text, vector)
    ]


def _covered(answer: str, vector: list[float]) -> bool:
    """Whether a published article is close to what the agent answered."""
    if not answer:
        return False
    try:
        hits = chunk_search(query=answer, k=1, mode="vector", query_vector=vector)
    except ValidationError:
        return False
    similarity = hits[0].similarity if hits else None
    return similarity is not None and similarity >= settings.KNOWLEDGE_GAP_COVERED


def _clusters(vectors: np.ndarray) -> list[list[int]]:
    """Indices of the rows in each cluster (one-row input: one cluster)."""
    if len(vectors) < 2:
        return [list(range(len(vectors)))]
    labels = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=settings.KNOWLEDGE_GAP_DISTANCE,
    ).fit_predict(vectors)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return list(groups.values())


def _gap_fields(rows: list[dict], vectors: np.ndarray) -> dict:
    """A gap's fields from its evidence: the question nearest the centre as its title, the
    agents' answers (the one to the central question first) as the proposed body."""
    centre = vectors.mean(axis=0)
    order = np.argsort(-(vectors @ centre))
    ordered = [rows[i] for i in order]
    pseudonyms = Pseudonymiser(enabled=settings.PII_REDACTION)
    questions = [
        {"message_id": r["message_id"], "ticket_id": r["ticket_id"], "reason": r["reason"],
         "text": pseudonyms.redact(r["question"])}
        for r in ordered
    ]  # fmt: skip
    # Agents' answers become article text: only patterned data (emails, phones, cards,
    # IBANs) is masked, since the name recogniser garbles product words ("Settings"); a
    # customer's name an agent wrote stays until the admin edits it, or the customer is erased.
    answers = [{"message_id": r["message_id"], "text": text_mask(r["answer"])} for r in ordered]
    intents = Counter(r["intent"] for r in rows if r["intent"])
    # The answer to the most central question; the others are on the gap, for the admin.
    central = next((a["text"].strip() for a in answers if a["text"].strip()), "")
    return {
        "title": questions[0]["text"][:300],
        "intent": intents.most_common(1)[0][0] if intents else "",
        "tickets": len({r["ticket_id"] for r in rows}),
        "questions": questions,
        "answers": answers,
        "message_ids": sorted(r["message_id"] for r in rows),
        "proposed_body": f"# {questions[0]['text'][:200]}\n\n{central}",
        "first_seen_at": min(r["at"] for r in rows),
        "last_seen_at": max(r["at"] for r in rows),
    }


def knowledge_gaps_refresh() -> dict[str, int]:
    """Recompute the open gaps from the recent evidence. Idempotent: the same evidence gives
    the same gaps; an open gap keeps its id while it shares messages with a new cluster."""
    since = timezone.now() - timedelta(days=settings.KNOWLEDGE_GAP_DAYS)
    rows = _evidence(since)
    clusters: list[tuple[list[dict], np.ndarray]] = []
    if rows:
        vectors = np.asarray(
            embeddings_fetch(texts=[r["question"] for r in rows]).vectors, dtype=np.float32
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        for members in _clusters(vectors):
            group = [rows[i] for i in members]
            if len({r["ticket_id"] for r in group}) >= settings.KNOWLEDGE_GAP_MIN_TICKETS:
                clusters.append((group, vectors[members]))
    created = updated = 0
    with transaction.atomic():
        open_gaps = list(KnowledgeGap.objects.select_for_update().filter(status=GapStatus.OPEN))
        taken: set[int] = set()
        for group, group_vectors in sorted(clusters, key=lambda c: -len(c[0])):
            fields = _gap_fields(group, group_vectors)
            ids = set(fields["message_ids"])
            match = max(
                (g for g in open_gaps if g.pk not in taken and ids & set(g.message_ids)),
                key=lambda g: len(ids & set(g.message_ids)),
                default=None,
            )
            if match is None:
                KnowledgeGap.objects.create(**fields)
                created += 1
                continue
            taken.add(match.pk)
            if match.message_ids != fields["message_ids"]:
                KnowledgeGap.objects.filter(pk=match.pk).update(**fields)
                updated += 1
        gone = [g.pk for g in open_gaps if g.pk not in taken]
        KnowledgeGap.objects.filter(pk__in=gone).delete()
    return {"evidence": len(rows), "gaps": len(clusters), "created": created,
            "updated": updated, "removed": len(gone)}  # fmt: skip


def knowledge_gap_draft_article(*, gap: KnowledgeGap) -> str:
    """A draft (unpublished) article in the `knowledge-gaps` source from the gap's proposal,
    for an admin to edit and publish in the knowledge base. Returns its external id."""
    if gap.status != GapStatus.OPEN:
        raise ConflictError(f"gap #{gap.pk} is {gap.get_status_display().lower()} already")
    external_id = f"gap-{gap.pk}"
    item = article_input_build(
        external_id=external_id,
        title=gap.title[:200],
        body=gap.proposed_body,
        status=ArticleStatus.DRAFT,
        tags=["knowledge-gap"],
    )
    articles_push(source_name=GAP_SOURCE, items=[item])
    KnowledgeGap.objects.filter(pk=gap.pk).update(
        status=GapStatus.ARTICLE_DRAFTED, article_external_id=external_id
    )
    return external_id


def knowledge_gap_dismiss(*, gap: KnowledgeGap) -> None:
    KnowledgeGap.objects.filter(pk=gap.pk).update(status=GapStatus.DISMISSED)


def knowledge_gap_report(*, limit: int = 20) -> str:
    """The open gaps as text: most tickets first, each with its questions and the proposed
    answer's first lines."""
    gaps = list(KnowledgeGap.objects.filter(status=GapStatus.OPEN)[:limit])
    if not gaps:
        return "no knowledge gaps: every question agents answered had an article behind it"
    lines = []
    for gap in gaps:
        lines.append(
            f"gap #{gap.pk}: {gap.tickets} tickets, intent {gap.intent or '-'}, last seen "
            f"{gap.last_seen_at:%Y-%m-%d}: {gap.title[:100]!r}"
        )
        for question in gap.questions[1:4]:
            lines.append(f"    also: {question['text'][:100]!r}")
        answer = next((a["text"] for a in gap.answers if a["text"].strip()), "")
        lines.append(f"    agents answered: {answer[:160]!r}")
    return "\n".join(lines)
