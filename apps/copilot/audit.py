"""The audit trail of AI actions as JSON lines: each draft with its decision and reason, the
guard's verdicts, the validation (output guard findings included), the versions it ran with,
and every model call it made (messages as sent, pseudonymised for a remote model; answer as
received; model, deployment, tokens, cost, latency)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from apps.copilot.models import Draft
from apps.llm.models import LLMCall


def audit_lines(*, since: datetime | None = None) -> Iterator[str]:
    drafts = Draft.objects.select_related("prompt").order_by("id")
    if since is not None:
        drafts = drafts.filter(created_at__gte=since)
    for draft in drafts.iterator(chunk_size=500):
        calls = LLMCall.objects.filter(id__in=draft.llm_call_ids or []).order_by("id")
        yield json.dumps(
            {
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
            },
            ensure_ascii=False,
        )
