"""The audit trail of AI actions as JSON lines.

`"kind": "draft"`: each draft with its decision and reason, the guard's verdicts, the
validation (output guard findings included), the versions it ran with, every model call it
made (messages as sent, pseudonymised for a remote model; answer as received; model,
deployment, tokens, cost, latency), and what people did afterwards: who sent or rejected it,
and the ticket's transitions until the next draft (who, from what to what, why).
`"kind": "admin_change"`: every change made in the Django admin (policies, prompts,
calibrations, intents, links, keys...): who, when, what object, what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from django.contrib.admin.models import LogEntry

from apps.copilot.models import Draft
from apps.llm.models import LLMCall
from apps.tickets.models import TicketEvent


def audit_lines(*, since: datetime | None = None) -> Iterator[str]:
    drafts = Draft.objects.select_related("prompt", "acted_by").order_by("id")
    changes = LogEntry.objects.select_related("user", "content_type").order_by("id")
    if since is not None:
        drafts = drafts.filter(created_at__gte=since)
        changes = changes.filter(action_time__gte=since)
    for draft in drafts.iterator(chunk_size=500):
        yield json.dumps(_draft_line(draft), ensure_ascii=False)
    for change in changes.iterator(chunk_size=500):
        yield json.dumps(
            {
                "kind": "admin_change",
                "at": change.action_time.isoformat(),
                "user": change.user.get_username(),
                "action": {1: "added", 2: "changed", 3: "deleted"}.get(change.action_flag, ""),
                "object_type": change.content_type.model if change.content_type else "",
                "object_id": change.object_id,
                "object": change.object_repr,
                "change": change.get_change_message(),
            },
            ensure_ascii=False,
        )


def _afterwards(draft: Draft) -> dict:
    """What people did with the draft and its ticket, until the ticket's next draft."""
    events = TicketEvent.objects.filter(ticket_id=draft.ticket_id, at__gte=draft.created_at)
    following = (
        Draft.objects.filter(ticket_id=draft.ticket_id, id__gt=draft.id)
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    if following is not None:
        events = events.filter(at__lt=following)
    return {
        "status": draft.status,
        "acted_by": draft.acted_by.get_username() if draft.acted_by else None,
        "sent_message_id": draft.sent_message_id,
        "ticket_events": [
            {
                "at": event.at.isoformat(),
                "actor": f"{event.actor_kind}:{event.actor_id}".rstrip(":"),
                "kind": event.kind,
                "from": event.from_status,
                "to": event.to_status,
                "reason": event.reason,
            }
            for event in events.order_by("id")[:100]
        ],
    }


def _draft_line(draft: Draft) -> dict:
    calls = LLMCall.objects.filter(id__in=draft.llm_call_ids or []).order_by("id")
    return {
        "kind": "draft",
        "draft_id": draft.id,
        "message_id": draft.message_id,
        "created_at": draft.created_at.isoformat(),
        "decision": draft.decision,
        "reason": draft.reason,
        "reason_detail": draft.reason_detail,
        "status": draft.status,
        "intent": draft.intent,
        "confidence": draft.confidence,
        "versions": {
            "prompt": draft.prompt.version if draft.prompt else None,
            "classifier": draft.classifier_version_id,
            "calibration": draft.calibration_version,
            "knowledge": draft.knowledge_version,
        },
        "routed_alias": draft.routed_alias,
        "guard": draft.guard,
        "validation": draft.validation,
        "model_calls": [
            {
                "id": call.id,
                "purpose": call.purpose,
                "model": call.model,
                "deployment": call.deployment_id,
                "status": call.status,
                "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens,
                "cost_usd": str(call.cost_usd),
                "latency_ms": call.latency_ms,
                "redaction": call.redaction,
                "messages": call.request_messages,
                "response": call.response_text,
            }
            for call in calls
        ],
        "afterwards": _afterwards(draft),
    }
