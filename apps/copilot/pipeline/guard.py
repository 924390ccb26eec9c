"""Guard stages: the customer's message (before triage) and the retrieved passages (before
drafting) read for injected instructions before any model sees them (apps.safety.injection).

A suspected message, or a passage that carries instructions (an indirect injection planted
in an article), hands the conversation to an agent with reason `injection_suspected` and the
evidence as the detail: no model is called, so an attack costs nothing and obeys nothing. A
scanner that fails hands off with `guard_failed`: the message is never let through unread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from apps.copilot.models import HandoffReason
from apps.copilot.pipeline.context import Context
from apps.copilot.pipeline.record import Handoff
from apps.copilot.pipeline.retrieval import Retrieval
from apps.llm import embeddings
from apps.safety.injection import heuristic_evidence, injection_model_present, injection_scan

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Guarded:
    verdict: dict = field(default_factory=dict)  # what Draft.guard stores
    handoff: Handoff | None = None


def input_guard(*, context: Context) -> Guarded:
    """The customer's message, before triage (whatever language it is in)."""
    try:
        # The classifier reads the message's sentence embedding, when one ships.
        vector = (
            embeddings.embed([context.message[:2000]])[0] if injection_model_present() else None
        )
        scan = injection_scan(context.message, vector=vector)
    except Exception as error:
        return _failed(error)
    return _verdict({"injection": scan.as_json()}, scan.evidence)


def passages_guard(*, retrieval: Retrieval) -> Guarded:
    """The retrieved passages, before the model reads them: an article can carry an
    injection planted in the help center (an indirect injection)."""
    try:
        planted = [
            {**item, "where": f"passage {passage.id} ({passage.source})"}
            for passage in retrieval.passages
            for item in heuristic_evidence(passage.text)
        ]
    except Exception as error:
        return _failed(error)
    return _verdict({"passages": planted}, planted)


def _failed(error: Exception) -> Guarded:
    logger.exception("injection scan failed")
    return Guarded(
        {"error": repr(error)[:300]},
        Handoff(HandoffReason.GUARD_FAILED, f"the injection scan failed: {error!r}"[:500]),
    )


def _verdict(verdict: dict, found: list[dict]) -> Guarded:
    if not found:
        return Guarded(verdict)
    detail = "; ".join(f"{e['kind']} in {e['where']}: {e['text']!r}" for e in found[:5])
    return Guarded(verdict, Handoff(HandoffReason.INJECTION_SUSPECTED, detail[:1000]))
