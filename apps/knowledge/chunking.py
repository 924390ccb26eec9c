"""Heading-aware chunking bounded by the embedding model's token window.

Each chunk stays inside one section (one heading path), carries the article title and its
heading path as context, and keeps a list or a table whole when it fits; what does not fit
is split at list items, table rows (header repeated), then sentences, then words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from apps.knowledge.parsing import Block, ParsedDocument

# [CLS] and [SEP] take two positions of the window.
SPECIAL_TOKENS = 2
HEADING_SEPARATOR = " > "
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")


@dataclass(frozen=True)
class ChunkDraft:
    position: int
    heading_path: str
    context: str
    text: str
    token_count: int

    @property
    def embedded_text(self) -> str:
        return embedded_text(context=self.context, text=self.text)


def chunk_context(*, title: str, heading_path: str) -> str:
    return f"{title}\n{heading_path}" if heading_path else title


def embedded_text(*, context: str, text: str) -> str:
    """What the model sees: title, heading path, then the passage without Markdown noise."""
    plain = _EMPHASIS.sub("", _LINK.sub(r"\1", text))
    return f"{context}\n\n{plain}"


def document_chunk(
    *,
    document: ParsedDocument,
    token_count: Callable[[str], int],
    max_tokens: int,
) -> list[ChunkDraft]:
    """Split `document` into chunks whose embedded text fits in `max_tokens` model tokens."""
    window = max_tokens - SPECIAL_TOKENS
    drafts: list[ChunkDraft] = []
    for path, section in groupby(document.blocks, key=lambda block: block.heading_path):
        heading_path = HEADING_SEPARATOR.join(path)
        context = chunk_context(title=document.title, heading_path=heading_path)
        context_tokens = token_count(context + "\n\n")
        if context_tokens > window // 2:
            # A heading path longer than half the window leaves no room: keep the last heading.
            context = chunk_context(title=document.title[:200], heading_path=path[-1][:200])
            context_tokens = token_count(context + "\n\n")
        budget = max(32, window - context_tokens)
        for text in _pack(list(section), budget=budget, token_count=token_count):
            for fitted in _fit(context, text, window=window, token_count=token_count):
                drafts.append(
                    ChunkDraft(
                        position=len(drafts),
                        heading_path=heading_path,
                        context=context,
                        text=fitted,
                        token_count=token_count(embedded_text(context=context, text=fitted)),
                    )
                )
    return drafts


def _pack(blocks: list[Block], *, budget: int, token_count: Callable[[str], int]) -> list[str]:
    """Greedy packing of a section's blocks into texts of at most `budget` tokens."""
    texts: list[str] = []
    current: list[str] = []
    used = 0
    for block in blocks:
        for piece in _pieces(block, budget=budget, token_count=token_count):
            tokens = token_count(embedded_text(context="", text=piece).strip()) + 1
            if current and used + tokens > budget:
                texts.append("\n\n".join(current))
                current, used = [], 0
            current.append(piece)
            used += tokens
    if current:
        texts.append("\n\n".join(current))
    return texts


def _pieces(block: Block, *, budget: int, token_count: Callable[[str], int]) -> list[str]:
    """The block whole if it fits, else its natural parts, each within `budget`."""
    if token_count(block.text) <= budget:
        return [block.text]
    if block.kind == "table":
        rows = block.text.split("\n")
        header = rows[:2] if len(rows) > 2 and set(rows[1]) <= set("|-: ") else rows[:1]
        return _group(rows[len(header) :], budget=budget, token_count=token_count, prefix=header)
    if block.kind == "list":
        items = re.split(r"\n(?=\s{0,3}(?:[-*+]|\d{1,3}[.)])\s)", block.text)
        return _group(items, budget=budget, token_count=token_count)
    sentences = _SENTENCE_END.split(block.text)
    return _group(sentences, budget=budget, token_count=token_count, joiner=" ")


def _group(
    parts: list[str],
    *,
    budget: int,
    token_count: Callable[[str], int],
    prefix: list[str] | None = None,
    joiner: str = "\n",
) -> list[str]:
    prefix = prefix or []
    prefix_tokens = token_count("\n".join(prefix)) + 1 if prefix else 0
    room = max(16, budget - prefix_tokens)
    groups: list[str] = []
    current: list[str] = []
    used = 0
    for part in parts:
        for piece in _split_words(part, room=room, token_count=token_count):
            tokens = token_count(piece) + 1
            if current and used + tokens > room:
                groups.append("\n".join([*prefix, joiner.join(current)]))
                current, used = [], 0
            current.append(piece)
            used += tokens
    if current:
        groups.append("\n".join([*prefix, joiner.join(current)]))
    return groups


def _split_words(text: str, *, room: int, token_count: Callable[[str], int]) -> list[str]:
    """A last resort for one huge sentence or row: windows of words."""
    if token_count(text) <= room:
        return [text]
    words = text.split()
    windows: list[str] = []
    current: list[str] = []
    for word in words:
        candidate = " ".join([*current, word])
        if current and token_count(candidate) > room:
            windows.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        windows.append(" ".join(current))
    return windows


def _fit(context: str, text: str, *, window: int, token_count: Callable[[str], int]) -> list[str]:
    """Token sums are estimates; check the real count and halve a text that still overflows."""
    if token_count(embedded_text(context=context, text=text)) <= window:
        return [text]
    words = text.split(" ")
    if len(words) < 2:
        return [text[: len(text) // 2], text[len(text) // 2 :]]
    middle = len(words) // 2
    return [
        *_fit(context, " ".join(words[:middle]), window=window, token_count=token_count),
        *_fit(context, " ".join(words[middle:]), window=window, token_count=token_count),
    ]
