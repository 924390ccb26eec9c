"""Reads of drafts, the effective policy, the active prompt and calibration."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet

from apps.copilot.models import (
    AssistOff,
    Calibration,
    CopilotPolicy,
    Draft,
    IntentArticleLink,
    LinkPenalty,
    LinkSource,
    PromptTemplate,
    Takeover,
)
from apps.copilot.pipeline.routing import RoutingRule

DRAFT_PURPOSE = "draft"


@dataclass(frozen=True)
class EffectivePolicy:
    """The admin's CopilotPolicy over the settings' defaults."""

    auto_send_threshold: float
    review_threshold: float
    top_k: int
    groundedness_threshold: float
    intent_boost: float
    routing: RoutingRule
    intent_overrides: dict = field(default_factory=dict)
    cache_enabled: bool = True
    auto_send_paused: bool = False
    draft_alias: str = ""  # every draft by this alias; blank: routing chooses
    # The calibration read with it (the same one confidence is scored with), so that a run
    # reads it once.
    calibration: Calibration | None = field(default=None, compare=False)

    def auto_send_allowed(self, intent: str) -> bool:
        return bool((self.intent_overrides.get(intent) or {}).get("auto_send", True))


def policy_effective() -> EffectivePolicy:
    """The policy in force: the admin's row where set, settings elsewhere; calibration's
    threshold (when one is active) over the setting, the admin's value over both."""
    row = CopilotPolicy.objects.first()
    calibration = calibration_active()
    default_auto = settings.COPILOT_AUTO_SEND_THRESHOLD
    if calibration is not None and calibration.auto_send_threshold is not None:
        default_auto = calibration.auto_send_threshold

    def pick(name: str, default):  # type: ignore[no-untyped-def]
        value = getattr(row, name, None) if row is not None else None
        return default if value is None else value

    base = RoutingRule()
    return EffectivePolicy(
        auto_send_threshold=pick("auto_send_threshold", default_auto),
        review_threshold=pick("review_threshold", settings.COPILOT_REVIEW_THRESHOLD),
        top_k=pick("top_k", settings.COPILOT_TOP_K),
        groundedness_threshold=pick(
            "groundedness_threshold", settings.COPILOT_GROUNDEDNESS_THRESHOLD
        ),
        intent_boost=pick("intent_boost", settings.COPILOT_INTENT_BOOST),
        routing=RoutingRule(
            min_intent_probability=pick(
                "routing_min_intent_probability", base.min_intent_probability
            ),
            min_retrieval_score=pick("routing_min_retrieval_score", base.min_retrieval_score),
            max_message_chars=pick("routing_max_message_chars", base.max_message_chars),
            max_questions=pick("routing_max_questions", base.max_questions),
        ),
        intent_overrides=(row.intent_overrides if row is not None else {}) or {},
        cache_enabled=row.cache_enabled if row is not None else True,
        auto_send_paused=row.auto_send_paused if row is not None else False,
        draft_alias=row.draft_alias if row is not None else "",
        calibration=calibration,
    )


def prompt_active(*, purpose: str = DRAFT_PURPOSE) -> PromptTemplate | None:
    return PromptTemplate.objects.filter(purpose=purpose, is_active=True).first()


# A calibration version standing in for the active one in this thread (an evaluation run).
_calibration_evaluated: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "calibration_evaluated", default=None
)


@contextmanager
def calibration_evaluated(version: int | None) -> Iterator[None]:
    """Within: `calibration_active` is calibration `version` in this thread (None: the
    active one). For evaluation runs; live traffic is untouched."""
    token = _calibration_evaluated.set(version)
    try:
        yield
    finally:
        _calibration_evaluated.reset(token)


def calibration_active() -> Calibration | None:
    evaluated = _calibration_evaluated.get()
    if evaluated is not None:
        return Calibration.objects.filter(version=evaluated).first()
    return Calibration.objects.filter(is_active=True).first()


def intent_article_weights(*, intent: str) -> dict[int, float]:
    """article id → the strongest link weight of this intent to it (see below)."""
    return intents_article_weights(intents=[intent]).get(intent, {})


def intents_article_weights(*, intents: list[str]) -> dict[str, dict[int, float]]:
    """intent → article id → the strongest link weight, for several intents in one query.

    An admin's links are the truth for their intent: when the intent has any, links learned
    from examples are left out (accepted drafts still count, they are agents' judgements).
    Each open customer complaint about a pair (LinkPenalty) scales its weight down.
    """
    rows: dict[str, list[tuple[int, float, str]]] = {}
    for intent, article_id, weight, source in IntentArticleLink.objects.filter(
        intent_name__in=intents
    ).values_list("intent_name", "article_id", "weight", "source"):
        rows.setdefault(intent, []).append((article_id, weight, source))
    result: dict[str, dict[int, float]] = {}
    for intent, links in rows.items():
        if any(source == LinkSource.ADMIN for _, _, source in links):
            links = [link for link in links if link[2] != LinkSource.LEARNED_FROM_EXAMPLES]
        weights: dict[int, float] = {}
        for article_id, weight, _ in links:
            weights[article_id] = max(weight, weights.get(article_id, 0.0))
        result[intent] = weights
    complaints = (
        LinkPenalty.objects.filter(intent_name__in=list(result))
        .values_list("intent_name", "article_id")
        .annotate(n=Count("id"))
    )
    for intent, article_id, count in complaints:
        if article_id in result[intent]:
            result[intent][article_id] *= settings.LINK_PENALTY_FACTOR**count
    return result


def ticket_is_taken_over(*, ticket_id: int) -> bool:
    return Takeover.objects.filter(ticket_id=ticket_id).exists()


def ticket_assist_is_off(*, ticket_id: int) -> bool:
    """An agent switched the copilot's drafts off for the ticket."""
    return AssistOff.objects.filter(ticket_id=ticket_id).exists()


def draft_current_for_ticket(*, ticket_id: int) -> Draft | None:
    """The current draft of the ticket's latest drafted message (None before any)."""
    return (
        Draft.objects.select_related("prompt", "experiment_arm__experiment")
        .filter(ticket_id=ticket_id, is_current=True, evaluation=False)
        .order_by("-message_id", "-id")
        .first()
    )


def drafts_for_ticket(*, ticket_id: int, include_history: bool = True) -> QuerySet[Draft]:
    """The ticket's drafts, newest first; superseded ones too unless `include_history=False`."""
    drafts = Draft.objects.select_related("prompt", "experiment_arm__experiment").filter(
        ticket_id=ticket_id, evaluation=False
    )
    if not include_history:
        drafts = drafts.filter(is_current=True)
    return drafts.order_by("-id")


def draft_for_sent_message(*, message_id: int) -> Draft | None:
    """The draft that became this sent reply (auto-sent, or sent by an agent), if any."""
    return Draft.objects.filter(sent_message_id=message_id).order_by("-id").first()


def draft_for_message(*, message_id: int) -> Draft | None:
    return Draft.objects.filter(message_id=message_id, is_current=True).first()


def drafts_written_between(*, start, end) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The live first drafts written in [start, end), as the figures need them (no text):
    a draft an agent asked to be written again is not another answer to the customer."""
    return [
        dict(row)
        for row in
        Draft.objects.filter(
            evaluation=False, generation=1, created_at__gte=start, created_at__lt=end
        ).values(
            "id", "decision", "reason", "status", "intent", "confidence", "stage_timings",
            "cost_usd", "cache_hit",
        )
    ]  # fmt: skip
