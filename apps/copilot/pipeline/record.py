"""What a composition records (`Composition`, saved as a Draft row), how a stage ends the
pipeline early (`Handoff`), and the per-stage clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from apps.copilot.models import Decision, DraftStatus, PromptTemplate
from apps.core.timelimits import soft_time_limit_check
from apps.core.tracing import span

if TYPE_CHECKING:  # the stages import this module
    from apps.copilot.pipeline.drafting import Drafted
    from apps.copilot.pipeline.reading import Reading
    from apps.copilot.pipeline.retrieval import Retrieval

Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Handoff:
    """A stage's verdict that the copilot must not answer on its own: a HandoffReason and
    the detail an agent reads. `drafted` says whether a reply was written anyway."""

    reason: str
    detail: str
    drafted: bool = False


@dataclass
class Composition:
    """Everything a Draft row records, before it is saved."""

    decision: str = Decision.HANDED_OFF
    reason: str = ""
    reason_detail: str = ""
    status: str = DraftStatus.PENDING
    body: str = ""
    confidence: float | None = None
    confidence_features: dict = field(default_factory=dict)
    calibration_version: int | None = None
    intent: str = ""
    intent_probability: float | None = None
    classifier_version_id: int | None = None
    language: str = ""
    routed_alias: str = ""
    routing_reason: str = ""
    model: str = ""
    prompt: PromptTemplate | None = None
    answerable: bool | None = None
    citations: list[dict] = field(default_factory=list)
    retrieved: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    stage_timings: dict = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    llm_call_ids: list[int] = field(default_factory=list)
    streamed: bool = False
    shown_while_drafting: bool = False
    cache_hit: str = ""
    knowledge_version: str = ""
    context: dict = field(default_factory=dict)
    guard: dict = field(default_factory=dict)  # the injection scan's verdict and evidence
    experiment_arm_id: int | None = None
    trace_id: str = ""
    # Not stored: what triage said, for the caller's ticket updates.
    intent_alternatives: list[dict] = field(default_factory=list)
    handoff_policy: str | None = None
    drafted: bool = False

    def hand_off(self, handoff: Handoff) -> Composition:
        self.decision = Decision.HANDED_OFF
        self.reason = handoff.reason
        self.reason_detail = handoff.detail
        if not handoff.drafted:
            self.status = DraftStatus.NOT_DRAFTED
        return self

    def record_reading(self, reading: Reading) -> None:
        triage = reading.triage
        self.intent = triage.intent or ""
        self.intent_probability = triage.confidence if triage.intent else None
        self.classifier_version_id = triage.classifier_version_id
        self.language = triage.language or ""
        self.intent_alternatives = [
            {"intent": a.intent, "probability": a.probability} for a in triage.alternatives
        ]
        self.handoff_policy = triage.handoff_policy
        self.context.update(reading.as_json())

    def record_retrieval(self, retrieval: Retrieval) -> None:
        self.knowledge_version = retrieval.knowledge_version
        self.retrieved = list(retrieval.cited_json().values())
        if self.context.get("reading"):  # a follow-up: what was searched, and the check
            self.context["query"] = retrieval.query
            self.context["readings_agree"] = retrieval.readings_agree
        if retrieval.links_learned_ms is not None:
            # Learning the links is a one-off of a fresh classifier, not the search's cost.
            self.stage_timings["learn_links"] = retrieval.links_learned_ms
            self.stage_timings["retrieve"] = round(
                self.stage_timings.get("retrieve", 0.0) - retrieval.links_learned_ms, 2
            )

    def record_drafted(self, drafted: Drafted) -> None:
        self.llm_call_ids.extend(drafted.llm_call_ids)
        if drafted.handoff is not None:
            return
        self.body, self.answerable, self.drafted = drafted.reply, drafted.answerable, True
        self.model, self.cache_hit, self.streamed = (
            drafted.model,
            drafted.cache_hit,
            drafted.streamed,
        )
        self.input_tokens, self.output_tokens = drafted.input_tokens, drafted.output_tokens
        self.cost_usd = drafted.cost_usd

    def draft_fields(self) -> dict:
        names = [
            "decision", "reason", "reason_detail", "status", "body", "confidence",
            "confidence_features", "calibration_version", "intent", "intent_probability",
            "classifier_version_id", "language", "routed_alias", "routing_reason", "model",
            "prompt", "answerable", "citations", "retrieved", "validation", "stage_timings",
            "input_tokens", "output_tokens", "cost_usd", "llm_call_ids", "streamed",
            "shown_while_drafting", "cache_hit", "knowledge_version", "context", "guard",
            "experiment_arm_id", "trace_id",
        ]  # fmt: skip
        return {name: getattr(self, name) for name in names}


class StageClock:
    """Each stage's wall time in milliseconds, in `timings` under the stage's name."""

    def __init__(self, timings: dict) -> None:
        self.timings = timings
        self.started = time.perf_counter()

    def run(
        self,
        stage: str,
        function: Callable[Parameters, Result],
        *args: Parameters.args,
        **kwargs: Parameters.kwargs,
    ) -> Result:
        soft_time_limit_check()  # a threads pool's only time limit (apps/core/timelimits.py)
        started = time.perf_counter()
        try:
            with span(f"pipeline.{stage}"):
                return function(*args, **kwargs)
        finally:
            self.timings[stage] = round((time.perf_counter() - started) * 1000, 2)

    def total(self) -> None:
        self.timings["total"] = round((time.perf_counter() - self.started) * 1000, 2)
