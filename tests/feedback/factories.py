"""Copilot drafts as the pipeline leaves them, for inbox and feedback tests."""

from __future__ import annotations

from typing import Any

from apps.copilot.models import Decision, Draft, DraftStatus, HandoffReason
from apps.tickets.models import AuthorKind, Message, Ticket


def draft_create(ticket: Ticket, **fields: Any) -> Draft:
    """A pending draft answering the ticket's latest customer message, needing review."""
    message = (
        Message.objects.filter(ticket=ticket, author_kind=AuthorKind.CUSTOMER)
        .order_by("-id")
        .first()
    )
    values: dict[str, Any] = {
        "ticket": ticket,
        "message": message,
        "body": "Hi! Refunds reach your card within 5 working days.\nBest, Fernhill",
        "status": DraftStatus.PENDING,
        "decision": Decision.NEEDS_REVIEW,
        "reason": HandoffReason.LOW_CONFIDENCE,
        "reason_detail": "confidence 0.62 below the auto-send threshold 0.90",
        "confidence": 0.62,
        "intent": "refund_status",
        "intent_probability": 0.81,
        "model": "local/extractive",
        "routed_alias": "draft-fast",
        "routing_reason": "simple and well covered",
        "citations": [
            {
                "passage_id": "P1",
                "article_id": 1,
                "external_id": "returns/refund-timing.md",
                "title": "When will I get my refund?",
                "url": "https://help.fernhill.example/returns/refund-timing",
                "heading_path": "Card refunds",
                "passage": "Card refunds take up to 5 working days.",
            }
        ],
        "stage_timings": {"triage": 12.5, "retrieve": 30.1, "draft": 210.0, "total": 260.4},
        "input_tokens": 812,
        "output_tokens": 64,
        "cost_usd": "0.00042",
    }
    values.update(fields)
    return Draft.objects.create(**values)
