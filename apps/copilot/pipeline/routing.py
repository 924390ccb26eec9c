"""Stage 4, routing: which model alias drafts a reply (a cheap one for simple, well-covered
questions). The stage is `route_choose(RoutingInput, RoutingRule) -> RoutingChoice`.

The rule is data (RoutingRule, editable by an admin) and its choice is recorded on the
draft with the reason, so routing can be audited and evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FAST_ALIAS = "draft-fast"
STRONG_ALIAS = "draft-strong"
_QUESTION = re.compile(r"\?")
_ENUMERATION = re.compile(r"(^|\n)\s*(\d+[.)]|[-*•])\s+", re.MULTILINE)


@dataclass(frozen=True)
class RoutingRule:
    min_intent_probability: float = 0.6
    min_retrieval_score: float = 0.5
    max_message_chars: int = 600
    max_questions: int = 1


@dataclass(frozen=True)
class RoutingInput:
    intent_known: bool
    intent_probability: float
    retrieval_top_score: float
    message: str
    sender_verified: bool = False


@dataclass(frozen=True)
class RoutingChoice:
    alias: str
    reason: str


def question_count(message: str) -> int:
    """Questions in a message: question marks, or enumerated items when there are more."""
    return max(len(_QUESTION.findall(message)), len(_ENUMERATION.findall(message)))


def route_choose(routing_input: RoutingInput, rule: RoutingRule) -> RoutingChoice:
    """`draft-fast` for a known intent with strong retrieval and a short single question."""
    if not routing_input.intent_known:
        return RoutingChoice(STRONG_ALIAS, "intent unknown")
    if routing_input.intent_probability < rule.min_intent_probability:
        return RoutingChoice(STRONG_ALIAS, "intent uncertain")
    if routing_input.retrieval_top_score < rule.min_retrieval_score:
        return RoutingChoice(STRONG_ALIAS, "weak retrieval")
    # What the sender writes (its length, its question marks) buys the stronger model only for
    # a sender who is who they say: an anonymous visitor cannot choose the expensive model.
    if len(routing_input.message) > rule.max_message_chars:
        if routing_input.sender_verified:
            return RoutingChoice(STRONG_ALIAS, "long message")
        return RoutingChoice(FAST_ALIAS, "long message from an unverified sender")
    if question_count(routing_input.message) > rule.max_questions:
        if routing_input.sender_verified:
            return RoutingChoice(STRONG_ALIAS, "several questions")
        return RoutingChoice(FAST_ALIAS, "several questions from an unverified sender")
    return RoutingChoice(FAST_ALIAS, "simple and well covered")
