"""What happens when the copilot writes a draft, besides storing it: the metrics count it,
and webhook subscribers to draft.ready hear of it (both after the transaction commits)."""

from __future__ import annotations

from apps.copilot.metrics import draft_metrics_record
from apps.copilot.models import Draft
from apps.webhooks.models import EventType
from apps.webhooks.services import webhook_event_emit


def draft_json(draft: Draft) -> dict:
    return {
        "id": draft.pk,
        "ticket_id": draft.ticket_id,
        "message_id": draft.message_id,
        "generation": draft.generation,
        "decision": draft.decision,
        "reason": draft.reason,
        "reason_detail": draft.reason_detail,
        "status": draft.status,
        "sent_message_id": draft.sent_message_id,
        "confidence": draft.confidence,
        "intent": draft.intent,
        "language": draft.language,
        "body": draft.body,
        "citations": draft.citations,
        "created_at": draft.created_at.isoformat(),
    }


def draft_written(draft: Draft) -> None:
    """Count the draft and announce it (draft.ready), in the caller's transaction."""
    draft_metrics_record(draft)
    webhook_event_emit(
        event_type=EventType.DRAFT_READY,
        data={"draft": draft_json(draft)},
        summary=(
            f"Draft for ticket #{draft.ticket_id}: {draft.get_decision_display()}"
            + (f" ({draft.get_reason_display()})" if draft.reason else "")
        ),
        ticket_id=draft.ticket_id,
    )
