"""The pipeline, stage after stage: a customer message (with its conversation) in, a
`Composition` (the draft and its decision, with everything that explains it) out.

No ticket is read or changed here, so the pipeline task and the evaluation compose drafts
the same way. Each stage's wall time is recorded under its name.
"""

from __future__ import annotations

from collections.abc import Callable

from apps.copilot.models import Calibration, PromptTemplate
from apps.copilot.pipeline import (
    cache,
    confidence,
    decision,
    drafting,
    guard,
    routing,
    validation,
)
from apps.copilot.pipeline.context import Conversation, context_build
from apps.copilot.pipeline.reading import triage_read
from apps.copilot.pipeline.record import Composition, StageClock
from apps.copilot.pipeline.retrieval import Retrieval, passages_retrieve
from apps.copilot.selectors import EffectivePolicy, policy_effective
from apps.llm import extractive
from apps.llm.services import alias_models

# Stream events that are not model output (e.g. who may watch the draft being written).
Announce = Callable[[dict], None]


def draft_compose(
    *,
    conversation: Conversation,
    prompt: PromptTemplate,
    ticket_id: int | None = None,
    message_id: int | None = None,
    customer_id: int | None = None,
    publish: drafting.Publish | None = None,
    announce: Announce | None = None,
    policy: EffectivePolicy | None = None,
    use_cache: bool = True,
    stream_wanted: Callable[[], bool] | None = None,
) -> Composition:
    """Compose the draft and the decision for one customer message (no ticket changes).

    Model failures become decisions (model_unavailable, budget), never exceptions.
    `stream_wanted`, asked as the model call starts, says whether the model's reply is worth
    streaming through `publish` (someone may watch it); without it, it always is.
    Side effects: LLMCall rows, reply-cache rows, stream events through `publish`, and
    `{"type": "audience", "customer": true}` through `announce` before drafting when the
    draft is on course to be auto-sent (the customer may then watch it being written).
    """
    policy = policy or policy_effective()
    record = Composition(prompt=prompt)
    clock = StageClock(record.stage_timings)
    try:
        return _compose(
            record, clock, conversation, prompt, policy,
            ticket_id=ticket_id, message_id=message_id, customer_id=customer_id, publish=publish,
            announce=announce, use_cache=use_cache, stream_wanted=stream_wanted,
        )  # fmt: skip
    finally:
        clock.total()


def _compose(
    record: Composition,
    clock: StageClock,
    conversation: Conversation,
    prompt: PromptTemplate,
    policy: EffectivePolicy,
    *,
    ticket_id: int | None,
    message_id: int | None,
    customer_id: int | None,
    publish: drafting.Publish | None,
    announce: Announce | None,
    use_cache: bool,
    stream_wanted: Callable[[], bool] | None,
) -> Composition:
    context = clock.run("context", context_build, conversation)
    record.context = context.as_json()

    guarded = clock.run("guard", guard.input_guard, context=context)
    record.guard.update(guarded.verdict)
    if guarded.handoff is not None:
        return record.hand_off(guarded.handoff)

    reading = clock.run("triage", triage_read, context)
    record.record_reading(reading)
    if reading.handoff is not None:
        return record.hand_off(reading.handoff)

    retrieval = clock.run(
        "retrieve", passages_retrieve, context=context, reading=reading, policy=policy
    )
    record.record_retrieval(retrieval)
    if retrieval.handoff is not None:
        return record.hand_off(retrieval.handoff)

    guarded = clock.run("guard_passages", guard.passages_guard, retrieval=retrieval)
    record.guard.update(guarded.verdict)
    if guarded.handoff is not None:
        return record.hand_off(guarded.handoff)

    basis = confidence.basis_of(reading, retrieval)
    calibration = policy.calibration
    choice = clock.run(
        "route",
        routing.route_choose,
        routing.RoutingInput(
            intent_known=bool(record.intent),
            intent_probability=basis.intent_probability,
            retrieval_top_score=basis.top_score,
            message=context.message,
            sender_verified=conversation.sender_verified,
        ),
        policy.routing,
    )
    if policy.draft_alias:  # an experiment's arm, or a promoted one, fixes the model
        choice = routing.RoutingChoice(policy.draft_alias, f"fixed alias ({choice.reason})")
    record.routed_alias, record.routing_reason = choice.alias, choice.reason
    if announce is not None and _may_be_sent(record, retrieval, basis, calibration, policy):
        announce({"type": "audience", "customer": True})

    caching = use_cache and policy.cache_enabled and not context.is_follow_up
    cached = None
    if caching:
        cached = clock.run(
            "cache",
            cache.cache_lookup,
            question=retrieval.query,
            question_vector=retrieval.question_vector,
            kb_version=retrieval.knowledge_version,
            prompt=prompt,
            intent=record.intent,
            models=alias_models(choice.alias),
        )

    drafted = clock.run(
        "draft",
        drafting.reply_draft,
        prompt=prompt, context=context, retrieval=retrieval, alias=choice.alias, cached=cached,
        ticket_id=ticket_id, message_id=message_id, customer_id=customer_id, publish=publish,
        stream_wanted=stream_wanted,
    )  # fmt: skip
    record.record_drafted(drafted)
    if drafted.handoff is not None:
        return record.hand_off(drafted.handoff)
    if (
        caching
        and cached is None
        and drafted.answerable
        and drafted.reply.strip()
        and not drafted.personalised
    ):
        cache.cache_store(
            question=retrieval.query, vector=retrieval.question_vector, intent=record.intent,
            kb_version=retrieval.knowledge_version, prompt=prompt, reply=drafted.reply,
            citations=drafted.cited_passages, model=drafted.model, ticket_id=ticket_id,
            reply_read=not drafted.prompt_without_personal_data,
        )  # fmt: skip

    checked = clock.run(
        "validate",
        validation.draft_validate,
        reply=drafted.reply,
        citations=drafted.citations,
        passages=drafted.evidence,
        grounded_threshold=policy.groundedness_threshold,
        courtesy=(extractive.GREETING, extractive.CLOSING),
        customer_text="\n".join([context.message, *(t.text for t in context.turns)]),
        system_prompt=prompt.body,
        canary=drafted.canary,
    )
    record.validation, record.citations = checked.as_dict(), drafted.cited_passages

    cited_articles = [c["article_id"] for c in record.citations]
    scored = clock.run(
        "confidence",
        confidence.confidence_compute,
        basis,
        article_id=cited_articles[0] if cited_articles else retrieval.hits[0].article_id,
        groundedness=checked.groundedness,
        answerable=drafted.answerable,
        citations_valid=checked.citations_valid and bool(drafted.citations),
        calibration=calibration,
    )
    record.confidence, record.confidence_features = scored.score, scored.features
    record.calibration_version = scored.calibration_version

    verdict = clock.run(
        "decide",
        decision.decision_make,
        answerable=drafted.answerable,
        validation=record.validation,
        cited=bool(drafted.citations),
        intent=record.intent,
        handoff_policy=record.handoff_policy,
        confidence=scored.score,
        policy=policy,
        readings_agree=retrieval.readings_agree,
    )
    return decision.verdict_apply(record, verdict)


def _may_be_sent(
    record: Composition,
    retrieval: Retrieval,
    basis: confidence.Basis,
    calibration: Calibration | None,
    policy: EffectivePolicy,
) -> bool:
    """Whether the draft is on course to be sent on its own, so the customer may watch it
    being written: everything known allows it, and the best it can do (grounded,
    answerable, validly cited) reaches the threshold. Otherwise the customer sees "typing"
    and never its text."""
    return bool(
        record.intent
        and record.handoff_policy not in ("review", "always_human")
        and retrieval.readings_agree
        and policy.auto_send_allowed(record.intent)
        and confidence.reachable(basis, retrieval.hits[0].article_id, calibration)
        >= policy.auto_send_threshold
    )
