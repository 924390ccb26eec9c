"""Composing a draft for one customer text: triage → retrieve → route → draft → validate →
confidence → decision. No ticket is read or changed here, so the pipeline and the
evaluation (`copilot_calibrate`) compose drafts the same way.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from pgvector.django import CosineDistance

from apps.copilot import prompts
from apps.copilot.confidence import (
    DEFAULT_CALIBRATION,
    FEATURE_NAMES,
    ConfidenceFeatures,
    confidence_score,
)
from apps.copilot.links import intent_links_ensure
from apps.copilot.models import (
    Decision,
    DraftStatus,
    HandoffReason,
    PromptTemplate,
    ReplyCacheEntry,
)
from apps.copilot.routing import RoutingInput, route_choose
from apps.copilot.selectors import (
    EffectivePolicy,
    calibration_active,
    intents_article_weights,
    policy_effective,
)
from apps.copilot.validation import EvidencePassage, draft_validate
from apps.knowledge.selectors import SearchHit, article_languages, chunk_search, knowledge_version
from apps.llm import embeddings, extractive, prompt_format
from apps.llm.exceptions import BudgetExhausted, ModelUnavailable
from apps.llm.services import StreamEvent, cache_hit_record, completion_create
from apps.triage.services import message_classify

logger = logging.getLogger(__name__)

# Retrieval fetches more than it shows, so the intent boost can lift a linked article.
RETRIEVAL_OVERFETCH = 2
_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)

Publish = Callable[[StreamEvent], None]
# Stream events that are not model output (e.g. who may watch the draft being written).
Announce = Callable[[dict], None]


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
    # Not stored: what triage said, for the caller's ticket updates.
    intent_alternatives: list[dict] = field(default_factory=list)
    handoff_policy: str | None = None
    drafted: bool = False

    def hand_off(self, reason: str, detail: str, *, drafted: bool = False) -> Composition:
        self.decision = Decision.HANDED_OFF
        self.reason = reason
        self.reason_detail = detail
        if not drafted:
            self.status = DraftStatus.NOT_DRAFTED
        return self

    def draft_fields(self) -> dict:
        names = [
            "decision", "reason", "reason_detail", "status", "body", "confidence",
            "confidence_features", "calibration_version", "intent", "intent_probability",
            "classifier_version_id", "language", "routed_alias", "routing_reason", "model",
            "prompt", "answerable", "citations", "retrieved", "validation", "stage_timings",
            "input_tokens", "output_tokens", "cost_usd", "llm_call_ids", "streamed",
            "shown_while_drafting", "cache_hit", "knowledge_version",
        ]  # fmt: skip
        return {name: getattr(self, name) for name in names}


class _Clock:
    def __init__(self, timings: dict) -> None:
        self.timings = timings
        self.started = time.perf_counter()
        self.last = self.started

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round((now - self.last) * 1000, 2)
        self.last = now

    def total(self) -> None:
        self.timings["total"] = round((time.perf_counter() - self.started) * 1000, 2)


def question_normalise(text: str) -> str:
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.lower())).strip()


def cache_key(*, question: str, kb_version: str, prompt_id: int) -> str:
    raw = f"{question_normalise(question)}\x1f{kb_version}\x1f{prompt_id}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _article_probabilities(
    alternatives: list[dict], links: dict[str, dict[int, float]]
) -> dict[int, float]:
    """article id → the classifier's probability mass on intents linked to it (each
    alternative's probability times its link weight), capped at 1."""
    mass: dict[int, float] = {}
    for alternative in alternatives:
        for article_id, weight in links.get(alternative["intent"], {}).items():
            mass[article_id] = mass.get(article_id, 0.0) + alternative["probability"] * weight
    return {article_id: min(1.0, value) for article_id, value in mass.items()}


def _rerank(hits: list[SearchHit], boosts: dict[int, float], boost: float) -> list[SearchHit]:
    # `boosts` is each article's intent probability mass (0..1). RRF scores are ~1/(60+rank):
    # a boost of 0.02 at full mass lifts a linked article above unlinked ones that are a few
    # ranks better, but not above a clearly better match.
    return sorted(hits, key=lambda hit: -(hit.score + boost * boosts.get(hit.article_id, 0.0)))


def _passage(index: int, hit: SearchHit) -> prompt_format.Passage:
    return prompt_format.Passage(id=f"P{index}", text=hit.text, source=hit.external_id)


def _hit_json(passage_id: str, hit: SearchHit) -> dict:
    return {
        "passage_id": passage_id,
        "article_id": hit.article_id,
        "external_id": hit.external_id,
        "title": hit.title,
        "url": hit.url,
        "heading_path": hit.heading_path,
        "chunk_id": hit.chunk_id,
        "passage": hit.text,
        "score": round(hit.score, 6),
        "similarity": round(hit.similarity, 4) if hit.similarity is not None else None,
    }


def _cache_lookup(
    *,
    key: str,
    question_vector: list[float],
    kb_version: str,
    prompt: PromptTemplate,
    intent: str,
) -> tuple[ReplyCacheEntry | None, str]:
    entry = ReplyCacheEntry.objects.filter(key=key).first()
    if entry is not None:
        return entry, "exact"
    if not intent:
        return None, ""
    nearest = (
        ReplyCacheEntry.objects.filter(knowledge_version=kb_version, prompt=prompt, intent=intent)
        .annotate(distance=CosineDistance("question_embedding", question_vector))
        .order_by("distance")
        .first()
    )
    if nearest is not None and 1 - nearest.distance >= settings.COPILOT_SEMANTIC_CACHE_SIMILARITY:
        return nearest, "semantic"
    return None, ""


def draft_compose(
    *,
    text: str,
    prompt: PromptTemplate,
    ticket_id: int | None = None,
    message_id: int | None = None,
    publish: Publish | None = None,
    announce: Announce | None = None,
    policy: EffectivePolicy | None = None,
    use_cache: bool = True,
    stream_wanted: Callable[[], bool] | None = None,
) -> Composition:
    """Compose the draft and the decision for one customer text (no ticket changes).

    Model failures become decisions (model_unavailable, budget), never exceptions.
    `stream_wanted`, asked as the model call starts, says whether the model's reply is worth
    streaming through `publish` (someone may watch it); without it, it always is.
    Side effects: LLMCall rows, reply-cache rows, stream events through `publish`, and
    `{"type": "audience", "customer": true}` through `announce` before drafting when the
    draft is on course to be auto-sent (the customer may then watch it being written).
    """
    policy = policy or policy_effective()
    result = Composition(prompt=prompt)
    clock = _Clock(result.stage_timings)
    try:
        return _compose(
            result,
            clock,
            text,
            prompt,
            ticket_id,
            message_id,
            publish,
            announce,
            policy,
            use_cache,
            stream_wanted,
        )
    finally:
        clock.total()


def _compose(
    result: Composition,
    clock: _Clock,
    text: str,
    prompt: PromptTemplate,
    ticket_id: int | None,
    message_id: int | None,
    publish: Publish | None,
    announce: Announce | None,
    policy: EffectivePolicy,
    use_cache: bool,
    stream_wanted: Callable[[], bool] | None,
) -> Composition:
    query = text[: settings.TRIAGE_MAX_MESSAGE_CHARS]
    # --- triage
    triage = message_classify(text=query)
    result.intent = triage.intent or ""
    result.intent_probability = triage.confidence if triage.intent else None
    result.classifier_version_id = triage.classifier_version_id
    result.language = triage.language or ""
    result.intent_alternatives = [
        {"intent": a.intent, "probability": a.probability} for a in triage.alternatives
    ]
    result.handoff_policy = triage.handoff_policy
    clock.lap("triage")
    if triage.asks_for_human:
        return result.hand_off(
            HandoffReason.CUSTOMER_ASKED_HUMAN, "the customer asked for a person"
        )
    if triage.handoff_policy == "always_human":
        return result.hand_off(
            HandoffReason.ALWAYS_HUMAN_INTENT,
            f"intent {triage.intent} is always handled by a human",
        )
    languages = article_languages()
    if not languages:
        return result.hand_off(HandoffReason.NO_ANSWER, "the knowledge base is empty")
    if triage.language and triage.language not in languages:
        return result.hand_off(
            HandoffReason.LANGUAGE_UNSUPPORTED,
            f"the message is in {triage.language}; the knowledge base has "
            f"{', '.join(sorted(languages))}",
        )
    if triage.out_of_scope and triage.classifier_version_id is not None:
        return result.hand_off(HandoffReason.OUT_OF_SCOPE, triage.reason or "out of scope")

    # --- retrieval, with the predicted intent as a signal
    result.knowledge_version = knowledge_version()
    # A classifier version with no learned links yet (a fresh instance's first messages):
    # learned here, once. After a knowledge-base change beat relearns them, off this path.
    if intent_links_ensure(
        classifier_version_id=result.classifier_version_id,
        knowledge_version=result.knowledge_version,
        from_pipeline=True,
    ):
        clock.lap("learn_links")
    question_vector = embeddings.embed([query[:2000]])[0]
    try:
        hits = chunk_search(
            query=query[:2000],
            k=min(50, policy.top_k * RETRIEVAL_OVERFETCH),
            language=triage.language if triage.language in languages else None,
            query_vector=question_vector,
        )
    except Exception as error:  # a query with nothing searchable is not a crash
        from apps.core.exceptions import ValidationError

        if not isinstance(error, ValidationError):
            raise
        hits = []
    probability = result.intent_probability or 0.0
    alternatives = result.intent_alternatives if result.intent else []
    links_by_intent = intents_article_weights(intents=[a["intent"] for a in alternatives])
    links = links_by_intent.get(result.intent, {})
    article_probability = _article_probabilities(alternatives, links_by_intent)
    searched_first = hits[0].article_id if hits else None
    hits = _rerank(hits, article_probability, policy.intent_boost)[: policy.top_k]
    passages = [_passage(index, hit) for index, hit in enumerate(hits, start=1)]
    by_passage = {p.id: hit for p, hit in zip(passages, hits, strict=True)}
    result.retrieved = [_hit_json(p.id, hit) for p, hit in zip(passages, hits, strict=True)]
    clock.lap("retrieve")
    if not hits:
        return result.hand_off(HandoffReason.NO_ANSWER, "no knowledge-base passage matches")
    similarities = [hit.similarity or 0.0 for hit in hits]
    top_score = similarities[0]
    margin = top_score - (max(similarities[1:]) if len(similarities) > 1 else 0.0)
    ranked = [a["probability"] for a in alternatives]
    intent_margin = (ranked[0] - ranked[1]) if len(ranked) > 1 else (ranked[0] if ranked else 0)

    def features_for(
        article_id: int, *, groundedness: float, answerable: bool, citations_valid: bool
    ) -> ConfidenceFeatures:
        """The confidence's inputs for a reply that cites `article_id` first."""
        return ConfidenceFeatures(
            intent_probability=probability,
            out_of_scope=triage.out_of_scope,
            retrieval_top_score=top_score,
            retrieval_margin=margin,
            intent_article_match=links.get(article_id, 0.0),
            groundedness=groundedness,
            answerable=answerable,
            citations_valid=citations_valid,
            intent_margin=intent_margin,
            retrieval_agrees=article_id == searched_first,
            article_probability=article_probability.get(article_id, 0.0),
        )

    # --- routing
    choice = route_choose(
        RoutingInput(
            intent_known=bool(result.intent),
            intent_probability=probability,
            retrieval_top_score=top_score,
            message=query,
        ),
        policy.routing,
    )
    result.routed_alias, result.routing_reason = choice.alias, choice.reason
    calibration = calibration_active()
    weights = calibration.weights if calibration is not None else DEFAULT_CALIBRATION
    if announce is not None:
        # The best the draft can do: grounded, answerable, validly cited. Below the threshold
        # even then, it cannot be auto-sent, so the customer sees "typing", never its text.
        best_case = features_for(
            hits[0].article_id, groundedness=1.0, answerable=True, citations_valid=True
        )
        if (
            result.intent
            and triage.handoff_policy not in ("review", "always_human")
            and policy.auto_send_allowed(result.intent)
            and confidence_score(best_case, weights) >= policy.auto_send_threshold
        ):
            announce({"type": "audience", "customer": True})
    clock.lap("route")

    # --- draft (or the cache)
    key = cache_key(question=query, kb_version=result.knowledge_version, prompt_id=prompt.id)
    cached = None
    if use_cache and policy.cache_enabled:
        entry, kind = _cache_lookup(
            key=key,
            question_vector=question_vector,
            kb_version=result.knowledge_version,
            prompt=prompt,
            intent=result.intent,
        )
        if entry is not None:
            cached = entry.reply
            result.cache_hit = kind
            ReplyCacheEntry.objects.filter(pk=entry.pk).update(hits=entry.hits + 1)
    # passage id → the cited passage as stored on the draft; and what validation reads
    lookup = {p.id: _hit_json(p.id, hit) for p, hit in zip(passages, hits, strict=True)}
    evidence = [EvidencePassage(id=p.id, text=p.text, url=by_passage[p.id].url) for p in passages]
    if cached is not None:
        # The cached reply is judged against the passages it was written from (a paraphrase
        # may retrieve other chunks of the same articles), relabelled C1, C2, ...
        lookup = {
            f"C{index}": {**cited, "passage_id": f"C{index}"}
            for index, cited in enumerate(cached["citations"], start=1)
        }
        evidence = [
            EvidencePassage(id=pid, text=cited["passage"], url=cited["url"])
            for pid, cited in lookup.items()
        ]
        reply, citations, answerable = cached["reply"], list(lookup), True
        result.model = cached["model"]
        call = cache_hit_record(
            purpose="draft",
            alias=choice.alias,
            model=result.model,
            ticket_id=ticket_id,
            message_id=message_id,
            prompt_version=prompt.version,
        )
        result.llm_call_ids.append(call.id)
        if publish is not None and reply:
            publish(StreamEvent("delta", reply))
            result.streamed = True
    else:
        if publish is not None and stream_wanted is not None and not stream_wanted():
            publish = None  # nobody to watch it: one response instead of a chunk per token
        try:
            completion = completion_create(
                purpose="draft",
                alias=choice.alias,
                messages=prompts.draft_messages(
                    system_prompt=prompt.body, passages=passages, customer_message=query
                ),
                ticket_id=ticket_id,
                message_id=message_id,
                prompt_version=prompt.version,
                stream_callback=publish,
            )
        except BudgetExhausted as error:
            clock.lap("draft")
            if error.llm_call_id is not None:
                result.llm_call_ids.append(error.llm_call_id)
            return result.hand_off(HandoffReason.BUDGET, error.message)
        except ModelUnavailable as error:
            clock.lap("draft")
            if error.llm_call_id is not None:
                result.llm_call_ids.append(error.llm_call_id)
            return result.hand_off(HandoffReason.MODEL_UNAVAILABLE, error.message)
        parsed = completion.parsed
        assert parsed is not None  # structured calls always parse or raise
        reply, citations, answerable = parsed.reply, list(parsed.citations), parsed.answerable
        result.model = completion.model
        result.input_tokens = completion.input_tokens
        result.output_tokens = completion.output_tokens
        result.cost_usd = completion.cost_usd
        result.llm_call_ids.append(completion.llm_call_id)
        result.streamed = publish is not None
        if use_cache and policy.cache_enabled and answerable and reply.strip():
            _cache_store(
                key=key,
                question=query,
                vector=question_vector,
                intent=result.intent,
                kb_version=result.knowledge_version,
                prompt=prompt,
                reply=reply,
                citations=[lookup[c] for c in citations if c in lookup],
                model=result.model,
            )
    result.body = reply
    result.answerable = answerable
    result.drafted = True
    clock.lap("draft")

    # --- validation
    validation = draft_validate(
        reply=reply,
        citations=citations,
        passages=evidence,
        grounded_threshold=policy.groundedness_threshold,
        courtesy=(extractive.GREETING, extractive.CLOSING),
    )
    result.validation = validation.as_dict()
    result.citations = [lookup[citation] for citation in citations if citation in lookup]
    clock.lap("validate")

    # --- confidence and decision
    cited_articles = [c["article_id"] for c in result.citations]
    top_article = cited_articles[0] if cited_articles else hits[0].article_id
    features = features_for(
        top_article,
        groundedness=validation.groundedness,
        answerable=answerable,
        citations_valid=validation.citations_valid and bool(citations),
    )
    result.calibration_version = calibration.version if calibration is not None else None
    result.confidence = round(confidence_score(features, weights), 6)
    result.confidence_features = {
        name: float(value) for name, value in zip(FEATURE_NAMES, features.vector(), strict=True)
    }
    _decide(result, validation.passed, citations, policy, triage.handoff_policy)
    clock.lap("decide")
    return result


def _decide(
    result: Composition,
    passed: bool,
    citations: list[str],
    policy: EffectivePolicy,
    handoff_policy: str | None,
) -> None:
    confidence = result.confidence or 0.0
    if not result.answerable:
        result.hand_off(
            HandoffReason.NO_ANSWER, "the passages do not answer the question", drafted=True
        )
    elif not passed or not citations:
        problems = []
        if not result.validation.get("grounded"):
            problems.append(f"groundedness {result.validation.get('groundedness')}")
        if result.validation.get("invalid_citations"):
            problems.append(f"invalid citations {result.validation['invalid_citations']}")
        if result.validation.get("foreign_links"):
            problems.append(f"links not in the knowledge base {result.validation['foreign_links']}")
        if not citations:
            problems.append("no citation")
        result.hand_off(HandoffReason.UNGROUNDED, "; ".join(problems), drafted=True)
    elif handoff_policy == "review":
        result.decision, result.reason = Decision.NEEDS_REVIEW, HandoffReason.REVIEW_INTENT
        result.reason_detail = f"intent {result.intent} is always reviewed by an agent"
    elif not result.intent:
        result.decision, result.reason = Decision.NEEDS_REVIEW, HandoffReason.UNCLASSIFIED
        result.reason_detail = "no intent (no active classifier)"
    elif not policy.auto_send_allowed(result.intent):
        result.decision, result.reason = Decision.NEEDS_REVIEW, HandoffReason.AUTO_SEND_DISABLED
        result.reason_detail = f"auto-send is disabled for intent {result.intent}"
    elif confidence >= policy.auto_send_threshold:
        result.decision, result.reason, result.reason_detail = Decision.AUTO_SENT, "", ""
    elif confidence >= policy.review_threshold:
        result.decision, result.reason = Decision.NEEDS_REVIEW, HandoffReason.LOW_CONFIDENCE
        result.reason_detail = (
            f"confidence {confidence:.3f} < auto-send threshold {policy.auto_send_threshold:.3f}"
        )
    else:
        result.hand_off(
            HandoffReason.LOW_CONFIDENCE,
            f"confidence {confidence:.3f} < review threshold {policy.review_threshold:.3f}",
            drafted=True,
        )


def _cache_store(
    *,
    key: str,
    question: str,
    vector: list[float],
    intent: str,
    kb_version: str,
    prompt: PromptTemplate,
    reply: str,
    citations: list[dict],
    model: str,
) -> None:
    ReplyCacheEntry.objects.update_or_create(
        key=key,
        defaults={
            "question": question[:2000],
            "question_embedding": vector,
            "intent": intent,
            "knowledge_version": kb_version,
            "prompt": prompt,
            "reply": {
                "reply": reply,
                "citations": citations,
                "model": model,
            },
        },
    )


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
    passed = bool(
        validation.get("citations_valid")
        and validation.get("links_valid")
        and validation.get("grounded")
    )
    cited = [c["passage_id"] for c in redone.citations] or (
        list(validation.get("invalid_citations", [])) if validation else []
    )
    _decide(redone, passed, cited, policy, redone.handoff_policy)
    return redone
