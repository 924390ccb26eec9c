"""Stage 1, context: the conversation the message belongs to, bounded, and what to search.

A customer's second message is often elliptical on its own ("is there a fee for that?",
"how long until the new one arrives?"): it means something only with what came before.
This stage turns the ticket's earlier turns into:

- `turns`: the earlier turns the draft prompt carries (customer, copilot and agent), newest
  kept, oldest dropped first under a token budget (COPILOT_CONTEXT_TOKEN_BUDGET), with the
  number dropped recorded;
- `open_questions`: the customer's earlier messages that nobody has answered yet (a newer
  message superseded their drafts): the draft answers them too;
- `contextual_text`: the message read in the light of the conversation, for triage and
  retrieval: the open questions and the customer's previous message before it, the newest
  last. Triage reads both the message alone and this, and keeps the more convincing reading
  (reading.py); retrieval searches with the reading triage kept.

A first message has no context: every stage sees exactly the message, as before.
No database access here: the pipeline task loads the turns (bounded) and passes them in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from apps.copilot.models import TurnRole

# A message quoting the thread below it: the quoted part is the earlier turns, which the
# context already carries (and which would otherwise outweigh the new words).
_QUOTED_LINE = re.compile(r"^\s*>.*$", re.MULTILINE)
_QUOTE_HEADER = re.compile(
    r"^\s*(on\s.{0,200}\swrote:|-{2,}\s*original message\s*-{2,}|from:\s.+)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# An earlier turn repeated verbatim inside the message counts as quoted when at least this long.
MIN_QUOTED_CHARS = 40
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Turn:
    """One message of the conversation as the context shows it."""

    role: str  # TurnRole
    text: str
    open: bool = False  # a customer message nobody has answered yet


@dataclass(frozen=True)
class Conversation:
    """The stage's input: the customer message being answered and the turns before it,
    oldest first, as loaded by the caller (at most COPILOT_CONTEXT_MAX_TURNS of them);
    `earlier_count` is how many the ticket has in all (more when the load was bounded)."""

    message: str
    earlier: tuple[Turn, ...] = ()
    earlier_count: int = 0
    # Whoever wrote it is who they say (an API integration, a widget identity signed by the
    # site): only then may a long or many-question message buy the stronger model.
    sender_verified: bool = False


@dataclass(frozen=True)
class Context:
    message: str  # the message, without a quoted thread, clipped to what triage reads
    turns: tuple[Turn, ...] = ()  # earlier turns within the budget, oldest first
    open_questions: tuple[str, ...] = ()  # earlier unanswered customer messages
    previous_customer: str = ""  # the customer's message before this one, if any
    dropped_turns: int = 0  # earlier turns left out (the budget, or the load bound)
    quoted_chars_removed: int = 0
    token_budget: int = 0
    turn_tokens: int = 0

    @property
    def is_follow_up(self) -> bool:
        return bool(self.previous_customer or self.turns)

    @property
    def contextual_text(self) -> str:
        """The message after what it may refer to: unanswered questions, else the customer's
        previous message. The newest words come last (and weigh most where order counts)."""
        before = list(self.open_questions) or [self.previous_customer]
        return "\n".join(part for part in (*before, self.message) if part.strip())

    def as_json(self) -> dict:
        return {
            "turns": len(self.turns),
            "dropped_turns": self.dropped_turns,
            "open_questions": len(self.open_questions),
            "quoted_chars_removed": self.quoted_chars_removed,
            "token_budget": self.token_budget,
            "turn_tokens": self.turn_tokens,
        }


def tokens_estimate(text: str) -> int:
    """Roughly how many tokens `text` is for a model: about four characters a token in
    English. The budget is a bound on cost and on the model's window, not an exact count, and
    the provider's own tokenizer is not known here (the offline drafter has none)."""
    return len(text) // 4 + 1


def quotes_remove(message: str, earlier: tuple[Turn, ...]) -> str:
    """The message without the thread it quotes: `>` lines, a reply header ("On ... wrote:")
    and what follows it, and earlier turns pasted back verbatim."""
    text = message
    header = _QUOTE_HEADER.search(text)
    if header is not None and header.start() > 0:
        text = text[: header.start()]
    text = _QUOTED_LINE.sub("", text)
    for turn in earlier:
        quoted = turn.text.strip()
        if len(quoted) >= MIN_QUOTED_CHARS and quoted in text:
            text = text.replace(quoted, " ")
    text = _BLANK_LINES.sub("\n\n", _SPACES.sub(" ", text)).strip()
    return text or message.strip()


def context_build(conversation: Conversation) -> Context:
    """The context of `conversation.message` (no model, no database)."""
    limit = settings.TRIAGE_MAX_MESSAGE_CHARS
    if not conversation.earlier:
        return Context(message=conversation.message[:limit])
    earlier = conversation.earlier
    message = quotes_remove(conversation.message, earlier)[:limit]
    quoted_removed = max(0, len(conversation.message.strip()) - len(message))
    # Unanswered: customer messages after the last reply the customer was sent.
    last_reply = max(
        (i for i, turn in enumerate(earlier) if turn.role != TurnRole.CUSTOMER), default=-1
    )
    earlier = tuple(
        Turn(turn.role, turn.text, open=True) if i > last_reply else turn
        for i, turn in enumerate(earlier)
    )
    open_questions = tuple(turn.text[:limit] for turn in earlier if turn.open)
    previous_customer = next(
        (turn.text[:limit] for turn in reversed(earlier) if turn.role == TurnRole.CUSTOMER), ""
    )
    budget = settings.COPILOT_CONTEXT_TOKEN_BUDGET
    kept: list[Turn] = []
    spent = 0
    for turn in reversed(earlier):
        cost = tokens_estimate(turn.text)
        if spent + cost > budget:
            break
        kept.append(turn)
        spent += cost
    kept.reverse()
    not_loaded = max(0, conversation.earlier_count - len(earlier))
    return Context(
        message=message,
        turns=tuple(kept),
        open_questions=open_questions,
        previous_customer=previous_customer,
        dropped_turns=len(earlier) - len(kept) + not_loaded,
        quoted_chars_removed=quoted_removed,
        token_budget=budget,
        turn_tokens=spent,
    )
