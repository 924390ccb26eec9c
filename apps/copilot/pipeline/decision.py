"""Stage 9, decision: auto-send, an agent's review, or a handoff, always with a reason.

In order: a reply the model says does not answer → no_answer; one that fails validation →
ungrounded (what failed is the detail); an intent that is always reviewed, no intent, or
auto-send switched off for the intent → review; then the confidence against the policy's
thresholds. `decision_redo` decides a stored composition again under another calibration
(evaluation: no model call).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from apps.copilot.confidence import ConfidenceFeatures, confidence_score
from apps.copilot.models import Decision, DraftStatus, HandoffReason
from apps.copilot.pipeline.record import Composition, Handoff
from apps.copilot.selectors import EffectivePolicy


@dataclass(frozen=True)
class Verdict:
    decision: str
    reason: str = ""
    detail: str = ""


def decision_make(
    *,
    answerable: bool,
    validation: dict,
    cited: bool,
    intent: str,
    handoff_policy: str | None,
    confidence: float,
    policy: EffectivePolicy,
    readings_agree: bool = True,
) -> Verdict:
    """The decision for a drafted reply (`validation` as a draft stores it).
    `readings_agree` false: a follow-up whose readings disagree, never sent on its own."""
    unsafe = validation.get("unsafe") or []
    if unsafe:
        found = "; ".join(f"{item['kind']}: {item['text']!r}" for item in unsafe[:5])
        return Verdict(Decision.HANDED_OFF, HandoffReason.UNSAFE_OUTPUT, found[:1000])
    if not answerable:
        return Verdict(
            Decision.HANDED_OFF, HandoffReason.NO_ANSWER, "the passages do not answer the question"
        )
    passed = bool(
        validation.get("citations_valid")
        and validation.get("links_valid")
        and validation.get("grounded")
    )
    if not passed or not cited:
        problems = []
        if not validation.get("grounded"):
            problems.append(f"groundedness {validation.get('groundedness')}")
        if validation.get("invalid_citations"):
            problems.append(f"invalid citations {validation['invalid_citations']}")
        if validation.get("foreign_links"):
            problems.append(f"links not in the knowledge base {validation['foreign_links']}")
        if not cited:
            problems.append("no citation")
        return Verdict(Decision.HANDED_OFF, HandoffReason.UNGROUNDED, "; ".join(problems))
    if handoff_policy == "review":
        return Verdict(
            Decision.NEEDS_REVIEW,
            HandoffReason.REVIEW_INTENT,
            f"intent {intent} is always reviewed by an agent",
        )
    if not intent:
        return Verdict(
            Decision.NEEDS_REVIEW, HandoffReason.UNCLASSIFIED, "no intent (no active classifier)"
        )
    if not policy.auto_send_allowed(intent):
        return Verdict(
            Decision.NEEDS_REVIEW,
            HandoffReason.AUTO_SEND_DISABLED,
            f"auto-send is disabled for intent {intent}",
        )
    if confidence >= policy.auto_send_threshold and not readings_agree:
        return Verdict(
            Decision.NEEDS_REVIEW,
            HandoffReason.AMBIGUOUS_FOLLOW_UP,
            f"confidence {confidence:.3f}, but the follow-up reads differently alone and in "
            "the conversation's light: an agent checks which it means",
        )
    if confidence >= policy.auto_send_threshold and policy.auto_send_paused:
        return Verdict(
            Decision.NEEDS_REVIEW,
            HandoffReason.AUTO_SEND_PAUSED,
            f"confidence {confidence:.3f} would have sent it, but auto-sending is paused",
        )
    if confidence >= policy.auto_send_threshold:
        return Verdict(Decision.AUTO_SENT)
    if confidence >= policy.review_threshold:
        return Verdict(
            Decision.NEEDS_REVIEW,
            HandoffReason.LOW_CONFIDENCE,
            f"confidence {confidence:.3f} < auto-send threshold {policy.auto_send_threshold:.3f}",
        )
    return Verdict(
        Decision.HANDED_OFF,
        HandoffReason.LOW_CONFIDENCE,
        f"confidence {confidence:.3f} < review threshold {policy.review_threshold:.3f}",
    )


def verdict_apply(record: Composition, verdict: Verdict) -> Composition:
    if verdict.decision == Decision.HANDED_OFF:
        return record.hand_off(Handoff(verdict.reason, verdict.detail, drafted=True))
    record.decision, record.reason, record.reason_detail = (
        verdict.decision,
        verdict.reason,
        verdict.detail,
    )
    return record


def decision_redo(
    result: Composition, *, calibration: dict, policy: EffectivePolicy
) -> Composition:
    """The same drafted composition decided again under another calibration and threshold
    (evaluation: no model call). Compositions handed off before drafting keep their decision.
    """
    if not result.drafted:
        return result
    features = ConfidenceFeatures.from_stored(result.confidence_features)
    redone = Composition(**{**result.__dict__, "citations": list(result.citations)})
    redone.status = DraftStatus.PENDING
    redone.confidence = round(confidence_score(features, calibration), 6)
    validation = redone.validation
    cited = bool(redone.citations) or bool(validation.get("invalid_citations"))
    verdict = decision_make(
        answerable=bool(redone.answerable),
        validation=validation,
        cited=cited,
        intent=redone.intent,
        handoff_policy=redone.handoff_policy,
        confidence=redone.confidence,
        # What the policy would decide: a pause is no verdict on a calibration.
        policy=replace(policy, auto_send_paused=False),
        readings_agree=redone.context.get("readings_agree", True),
    )
    return verdict_apply(redone, verdict)
