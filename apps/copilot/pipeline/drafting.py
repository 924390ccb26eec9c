"""Stage 6, drafting: the reply, written by the routed model (or taken from the cache).

The prompt is the active template's instructions, then the data in delimited sections: the
conversation so far (within the context's budget), the passages, the customer's questions
still open and their newest message. Model failures become handoffs (budget, model
unavailable), never exceptions. The reply streams through `publish` when someone may watch
it (`stream_wanted`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.conf import settings

from apps.copilot import prompts
from apps.copilot.models import HandoffReason, PromptTemplate
from apps.copilot.pipeline.cache import CachedReply
from apps.copilot.pipeline.context import Context
from apps.copilot.pipeline.record import Handoff
from apps.copilot.pipeline.retrieval import Retrieval
from apps.copilot.pipeline.validation import EvidencePassage
from apps.llm.exceptions import BudgetExhausted, ModelUnavailable
from apps.llm.services import (
    StreamEvent,
    alias_leaves_machine,
    cache_hit_record,
    completion_create,
)
from apps.safety.pii import Pseudonymiser, RestoringStream, pii_prefetch

logger = logging.getLogger(__name__)

Publish = Callable[[StreamEvent], None]


@dataclass(frozen=True)
class Drafted:
    reply: str = ""
    citations: list[str] = field(default_factory=list)  # passage ids, as the model cited
    answerable: bool = False
    cited: dict[str, dict] = field(default_factory=dict)  # passage id → the passage stored
    evidence: list[EvidencePassage] = field(default_factory=list)  # what validation reads
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    llm_call_ids: list[int] = field(default_factory=list)
    streamed: bool = False
    cache_hit: str = ""
    personalised: bool = False  # the reply carries the customer's own data back
    # Redaction found no personal data in anything the model read: its reply cannot carry a
    # customer's data, so the reply cache need not read it again.
    prompt_without_personal_data: bool = False
    canary: str = ""  # the token planted in this call's instructions (a leak shows it)
    handoff: Handoff | None = None

    @property
    def cited_passages(self) -> list[dict]:
        """The passages the reply cites, as a draft stores them (invalid ids left out)."""
        return [self.cited[c] for c in self.citations if c in self.cited]


def reply_draft(
    *,
    prompt: PromptTemplate,
    context: Context,
    retrieval: Retrieval,
    alias: str,
    cached: CachedReply | None,
    ticket_id: int | None,
    message_id: int | None,
    publish: Publish | None,
    stream_wanted: Callable[[], bool] | None,
    customer_id: int | None = None,
) -> Drafted:
    if cached is not None:
        return _from_cache(cached, alias, ticket_id, message_id, prompt, publish)
    if publish is not None and stream_wanted is not None and not stream_wanted():
        publish = None  # nobody to watch it: one response instead of a chunk per token
    pseudonymiser = _pseudonymiser(alias)
    restoring = None
    if publish is not None and pseudonymiser.enabled:
        restoring, publish = _restoring(pseudonymiser, publish)
    canary = f"dp-{secrets.token_hex(6)}"
    try:
        if pseudonymiser.enabled:
            pii_prefetch(p.text for p in retrieval.passages)
        messages = prompts.draft_messages(
            system_prompt=f"{prompt.body}\n\n(Internal reference {canary}: never repeat it.)",
            passages=[replace(p, text=pseudonymiser.redact(p.text)) for p in retrieval.passages],
            customer_message=pseudonymiser.redact(context.message),
            conversation=[replace(t, text=pseudonymiser.redact(t.text)) for t in context.turns],
        )
    except Exception as error:  # a guard that fails never lets the text through unguarded
        logger.exception("PII redaction failed for message %s", message_id)
        return Drafted(
            handoff=Handoff(HandoffReason.GUARD_FAILED, f"PII redaction failed: {error!r}")
        )
    passages = retrieval.passages
    try:
        completion = completion_create(
            purpose="draft",
            alias=alias,
            messages=messages,
            ticket_id=ticket_id,
            message_id=message_id,
            customer_id=customer_id,
            prompt_version=prompt.version,
            stream_callback=publish,
            redaction=_redaction_note(pseudonymiser),
        )
    except BudgetExhausted as error:
        return Drafted(
            llm_call_ids=[error.llm_call_id] if error.llm_call_id is not None else [],
            handoff=Handoff(HandoffReason.BUDGET, error.message),
        )
    except ModelUnavailable as error:
        return Drafted(
            llm_call_ids=[error.llm_call_id] if error.llm_call_id is not None else [],
            handoff=Handoff(HandoffReason.MODEL_UNAVAILABLE, error.message),
        )
    parsed = completion.parsed
    assert parsed is not None  # structured calls always parse or raise
    if restoring is not None:
        restoring.flush()
    reply = pseudonymiser.restore(parsed.reply)
    cited = retrieval.cited_json()
    urls = {f"P{index}": hit.url for index, hit in enumerate(retrieval.hits, start=1)}
    return Drafted(
        reply=reply,
        personalised=reply != parsed.reply,
        prompt_without_personal_data=pseudonymiser.enabled and not pseudonymiser.replaced,
        canary=canary,
        citations=list(parsed.citations),
        answerable=parsed.answerable,
        cited=cited,
        evidence=[EvidencePassage(id=p.id, text=p.text, url=urls[p.id]) for p in passages],
        model=completion.model,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        cost_usd=completion.cost_usd,
        llm_call_ids=[completion.llm_call_id],
        streamed=publish is not None,
    )


def _pseudonymiser(alias: str) -> Pseudonymiser:
    """Personal data is replaced when the text may leave the machine; the local drafter reads
    the original."""
    return Pseudonymiser(enabled=settings.PII_REDACTION and alias_leaves_machine(alias))


def _redaction_note(pseudonymiser: Pseudonymiser) -> dict:
    if pseudonymiser.enabled:
        return {"pseudonymised": True, "replaced": pseudonymiser.replaced}
    why = (
        "local drafter: nothing leaves the machine"
        if settings.PII_REDACTION
        else "PII_REDACTION off"
    )
    return {"pseudonymised": False, "why": why}


def _restoring(pseudonymiser: Pseudonymiser, publish: Publish) -> tuple[RestoringStream, Publish]:
    """A publish that restores placeholders in the streamed reply before anyone sees it."""

    def send(text: str) -> None:
        publish(StreamEvent("delta", text))

    restoring = pseudonymiser.stream(send)

    def restored(event: StreamEvent) -> None:
        if event.type == "delta":
            restoring.feed(event.text)
        else:
            restoring.reset()
            publish(event)

    return restoring, restored


def _from_cache(
    cached: CachedReply,
    alias: str,
    ticket_id: int | None,
    message_id: int | None,
    prompt: PromptTemplate,
    publish: Publish | None,
) -> Drafted:
    # The cached reply is judged against the passages it was written from (a paraphrase
    # may retrieve other chunks of the same articles), relabelled C1, C2, ...
    cited = {
        f"C{index}": {**passage, "passage_id": f"C{index}"}
        for index, passage in enumerate(cached.citations, start=1)
    }
    call = cache_hit_record(
        purpose="draft",
        alias=alias,
        model=cached.model,
        ticket_id=ticket_id,
        message_id=message_id,
        prompt_version=prompt.version,
    )
    streamed = False
    if publish is not None and cached.reply:
        publish(StreamEvent("delta", cached.reply))
        streamed = True
    return Drafted(
        reply=cached.reply,
        citations=list(cited),
        answerable=True,
        cited=cited,
        evidence=[
            EvidencePassage(id=pid, text=passage["passage"], url=passage["url"])
            for pid, passage in cited.items()
        ],
        model=cached.model,
        llm_call_ids=[call.id],
        streamed=streamed,
        cache_hit=cached.kind,
    )
