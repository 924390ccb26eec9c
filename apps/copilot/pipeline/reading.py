"""Stage 2, triage reading: what the customer wants, and whether the copilot may answer.

A follow-up is classified three ways, in one batch:

- `message`: the message alone (a new question in a conversation reads fine on its own);
- `conversation`: the message after what it may refer to (`Context.contextual_text`):
  "how do I turn it off again?" after a question about automatic top-ups;
- `topic`: the message with the earlier message's topic words added: "is there a fee for
  that?" after a question about topping up by card reads as "is there a fee for that? top
  card", which keeps the message's own question (a fee) about the earlier subject; the
  conversation reading tends to repeat the earlier question instead.

The most confident reading is kept (each is a calibrated probability). A message that opens
on a new subject ("forget that, ...") is read alone. What the message itself signals
(language, a request for a person, urgency) always comes from the message alone.

Whether the readings agree is kept for the decision: a follow-up whose meaning depends on a
reading that the others contradict is not sent on its own (`readings_agree`).

Ends the pipeline early, with a reason, when the customer asked for a person, the intent is
always handled by one, the knowledge base is empty or lacks the message's language, or the
message is unlike every intent the classifier knows.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from apps.copilot.models import HandoffReason
from apps.copilot.pipeline.context import Context
from apps.copilot.pipeline.record import Handoff
from apps.copilot.pipeline.validation import STOPWORDS
from apps.knowledge.selectors import article_languages
from apps.triage.classification import ClassificationResult, messages_classify

MESSAGE, CONVERSATION, TOPIC = "message", "conversation", "topic"
# A follow-up that opens like this leaves the earlier subject: it is read on its own.
_NEW_SUBJECT = re.compile(
    r"^\W*(forget (that|it|about)|never ?mind|scratch that|different question|another "
    r"question|new question|unrelated|on another (note|subject|topic)|separate(ly)? question)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*", re.UNICODE)
# Topic words added from earlier messages, at most (the message must still dominate).
MAX_TOPIC_WORDS = 8
# Below this the message alone is too unsure of its intent to contradict a reading in context
# ("ok and then what?" is 0.2 sure of anything).
MESSAGE_DISSENT_CONFIDENCE = 0.5
# A reply sent on its own on the strength of the conversation needs every reading in context
# this sure of its intent (and of the same article): a follow-up that merely continues the
# earlier subject reads so; one that asks about another aspect of it often does not.
CONTEXT_READING_MIN_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Interpretation:
    name: str  # MESSAGE, CONVERSATION or TOPIC
    text: str  # what was classified (and is searched, if this reading is kept)
    intent: str | None
    confidence: float


@dataclass(frozen=True)
class Reading:
    triage: ClassificationResult  # the reading kept (signals from the message alone)
    kept: Interpretation
    interpretations: tuple[Interpretation, ...] = ()  # every reading, for a follow-up
    new_subject: bool = False
    languages: frozenset[str] = frozenset()  # the knowledge base's languages
    handoff: Handoff | None = None

    @property
    def in_context(self) -> bool:
        return self.kept.name != MESSAGE

    def as_json(self) -> dict:
        if not self.interpretations:
            return {"reading": MESSAGE, "new_subject": self.new_subject} if self.new_subject else {}
        return {
            "reading": self.kept.name,
            "readings": {
                i.name: {"intent": i.intent, "confidence": i.confidence}
                for i in self.interpretations
            },
        }


def starts_new_subject(message: str) -> bool:
    return bool(_NEW_SUBJECT.search(message))


def topic_words(earlier: str, message: str) -> str:
    """The content words of `earlier` that `message` lacks, in order, at most MAX_TOPIC_WORDS."""
    have = {word.lower() for word in _WORD.findall(message)}
    words = [
        word.lower()
        for word in _WORD.findall(earlier)
        if len(word) > 2 and word.lower() not in STOPWORDS and word.lower() not in have
    ]
    return " ".join(list(dict.fromkeys(words))[:MAX_TOPIC_WORDS])


def _interpretations(context: Context) -> list[tuple[str, str]]:
    readings = [(MESSAGE, context.message)]
    if context.is_follow_up and not starts_new_subject(context.message):
        earlier = context.contextual_text.removesuffix(context.message).strip()
        readings.append((CONVERSATION, context.contextual_text))
        topic = topic_words(earlier, context.message)
        if topic:
            readings.append((TOPIC, f"{context.message} {topic}"))
    return readings


def triage_read(context: Context) -> Reading:
    """The kept reading of the message and any early handoff (no model call)."""
    texts = _interpretations(context)
    results = messages_classify(texts=[text for _, text in texts])
    alone = results[0]
    interpretations = [
        Interpretation(name, text, result.intent, result.confidence)
        for (name, text), result in zip(texts, results, strict=True)
    ]
    # The most confident reading that names an intent (the message's own on a tie; the
    # message's own when none does).
    named = [i for i, result in enumerate(results) if result.intent is not None]
    best = max(named, key=lambda i: (results[i].confidence, -i)) if named else 0
    kept = results[best]
    triage = alone
    if best:
        triage = dataclasses.replace(
            alone,
            intent=kept.intent,
            confidence=kept.confidence,
            alternatives=kept.alternatives,
            out_of_scope=kept.out_of_scope,
            handoff_policy=kept.handoff_policy,
            reason=kept.reason,
        )
    languages = article_languages()
    return Reading(
        triage=triage,
        kept=interpretations[best],
        interpretations=tuple(interpretations) if len(interpretations) > 1 else (),
        new_subject=context.is_follow_up and len(interpretations) == 1,
        languages=frozenset(languages),
        handoff=_handoff(triage, languages),
    )


def readings_agree(reading: Reading, article_of: Callable[[str], object]) -> bool:
    """Whether a follow-up's readings back the kept one (`article_of`: the article that
    answers an intent, or the intent itself when none is linked). A first message, or one on
    a new subject, has nothing to disagree with.

    Kept alone: the reading in conversation must point to the same article (else the
    message may be a detail of the earlier question: "it's a Mastercard, if that
    matters"). Kept in context: the readings in context must agree, each at least
    CONTEXT_READING_MIN_CONFIDENCE sure, and the message alone must not confidently point
    elsewhere.
    """
    by_name = {i.name: i for i in reading.interpretations}
    if not by_name:
        return True

    def article(interpretation: Interpretation | None) -> object:
        if interpretation is None or interpretation.intent is None:
            return None
        return article_of(interpretation.intent)

    kept = article(reading.kept)
    if not reading.in_context:
        return article(by_name.get(CONVERSATION)) == kept
    others_in_context = [by_name[name] for name in (CONVERSATION, TOPIC) if name in by_name]
    if any(
        article(other) != kept or other.confidence < CONTEXT_READING_MIN_CONFIDENCE
        for other in others_in_context
    ):
        return False
    message = by_name[MESSAGE]
    return (
        message.intent is None
        or message.confidence < MESSAGE_DISSENT_CONFIDENCE
        or article(message) == kept
    )


def _handoff(triage: ClassificationResult, languages: set[str]) -> Handoff | None:
    if triage.asks_for_human:
        return Handoff(HandoffReason.CUSTOMER_ASKED_HUMAN, "the customer asked for a person")
    if triage.handoff_policy == "always_human":
        return Handoff(
            HandoffReason.ALWAYS_HUMAN_INTENT,
            f"intent {triage.intent} is always handled by a human",
        )
    if not languages:
        return Handoff(HandoffReason.NO_ANSWER, "the knowledge base is empty")
    if triage.language and triage.language not in languages:
        return Handoff(
            HandoffReason.LANGUAGE_UNSUPPORTED,
            f"the message is in {triage.language}; the knowledge base has "
            f"{', '.join(sorted(languages))}",
        )
    if triage.out_of_scope and triage.classifier_version_id is not None:
        return Handoff(HandoffReason.OUT_OF_SCOPE, triage.reason or "out of scope")
    return None
