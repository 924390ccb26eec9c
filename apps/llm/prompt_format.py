"""The delimited-section format of Deskpilot prompts: render for the copilot, parse for drafters.

Untrusted text (retrieved passages, the customer's message) goes into sections of a fixed
prompt, so the model can tell data from instructions:

    <conversation>
    <turn role="customer">I returned the jacket last week.</turn>
    <turn role="copilot">Hello, we received it ...</turn>
    <turn role="customer" open="true">Can I get store credit instead?</turn>
    </conversation>
    <passages>
    <passage id="P1" source="billing/refunds.md">Refunds are issued within 5 days.</passage>
    <passage id="P2" source="billing/invoices.md">…</passage>
    </passages>
    <customer_message>Where is my refund?</customer_message>

The conversation section (the turns before the message, oldest first; `open` marks a
customer message nobody has answered yet) is there only for a follow-up.

Inside a section `&`, `<` and `>` are escaped as `&amp;`, `&lt;`, `&gt;` (and `"` inside an
attribute as `&quot;`), so a customer who writes `</customer_message>` or `<passage ...>`
produces inert text, never a new section. `sections_parse` is the exact inverse of
`sections_render` and is how `local/extractive` reads a prompt.

The copilot builds the user message with `sections_render(passages=..., customer_message=...)`
and puts its instructions (its own versioned template, plus `structured.OUTPUT_INSTRUCTIONS`)
in the system message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PASSAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PASSAGE = re.compile(r'<passage id="([^"]*)" source="([^"]*)">(.*?)</passage>', re.DOTALL)
_CUSTOMER_MESSAGE = re.compile(r"<customer_message>(.*?)</customer_message>", re.DOTALL)
_CONVERSATION = re.compile(r"<conversation>(.*?)</conversation>", re.DOTALL)
_TURN = re.compile(r'<turn role="([^"]*)"( open="true")?>(.*?)</turn>', re.DOTALL)
_ENTITY = re.compile(r"&(amp|lt|gt|quot);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of the knowledge base, as the model sees it."""

    id: str  # what the model cites, e.g. "P1"
    text: str
    source: str = ""  # where it comes from, e.g. the article's external id or path


@dataclass(frozen=True)
class Turn:
    """An earlier message of the conversation: who wrote it ("customer", "copilot",
    "agent"), and for a customer's, whether it is still unanswered."""

    role: str
    text: str
    open: bool = False


@dataclass(frozen=True)
class ParsedPrompt:
    passages: tuple[Passage, ...]
    customer_message: str  # the last customer message section ("" when there is none)
    conversation: tuple[Turn, ...] = ()


def escape(text: str, *, attribute: bool = False) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace('"', "&quot;") if attribute else escaped


def unescape(text: str) -> str:
    # One pass, so "&amp;lt;" becomes "&lt;" (the original text), not "<".
    return _ENTITY.sub(lambda match: _ENTITIES[match.group(1)], text)


def passage_render(passage: Passage) -> str:
    if not PASSAGE_ID_PATTERN.match(passage.id):
        raise ValueError(f"passage id {passage.id!r} must match {PASSAGE_ID_PATTERN.pattern}")
    return (
        f'<passage id="{passage.id}" source="{escape(passage.source, attribute=True)}">'
        f"{escape(passage.text)}</passage>"
    )


def customer_message_render(text: str) -> str:
    return f"<customer_message>{escape(text)}</customer_message>"


def turn_render(turn: Turn) -> str:
    role = escape(turn.role, attribute=True)
    flag = ' open="true"' if turn.open else ""
    return f'<turn role="{role}"{flag}>{escape(turn.text)}</turn>'


def sections_render(
    *,
    passages: Sequence[Passage],
    customer_message: str,
    conversation: Sequence[Turn] = (),
) -> str:
    """The data part of a prompt: the conversation before the message (if any), every
    passage, then the customer's message.

    Raises ValueError on two passages with one id (the model could not cite them apart).
    """
    ids = [passage.id for passage in passages]
    if len(ids) != len(set(ids)):
        raise ValueError(f"passage ids must be unique, got {ids}")
    lines = []
    if conversation:
        lines += ["<conversation>", *(turn_render(t) for t in conversation), "</conversation>"]
    lines += ["<passages>", *(passage_render(p) for p in passages), "</passages>"]
    lines.append(customer_message_render(customer_message))
    return "\n".join(lines)


def sections_parse(texts: str | Iterable[str]) -> ParsedPrompt:
    """Passages and the last customer message found in `texts` (e.g. every message content)."""
    joined = texts if isinstance(texts, str) else "\n".join(texts)
    # The conversation comes first: a customer message quoting `<passage ...>` is escaped,
    # so the sections found are the renderer's own.
    section = _CONVERSATION.search(joined)
    conversation = tuple(
        Turn(role=unescape(role), text=unescape(text), open=bool(is_open))
        for role, is_open, text in (_TURN.findall(section.group(1)) if section else [])
    )
    remainder = joined[section.end() :] if section else joined
    passages = tuple(
        Passage(id=unescape(pid), source=unescape(source), text=unescape(body))
        for pid, source, body in _PASSAGE.findall(remainder)
    )
    messages = _CUSTOMER_MESSAGE.findall(remainder)
    return ParsedPrompt(
        passages=passages,
        customer_message=unescape(messages[-1]) if messages else "",
        conversation=conversation,
    )


def message_texts(messages: Sequence[dict]) -> list[str]:
    """The text of each chat message (string content or the text parts of a content list)."""
    texts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    return texts
