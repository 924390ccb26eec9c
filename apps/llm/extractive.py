"""The offline drafter behind `local/extractive`: a reply made of the passages' own sentences.

It is not a language model. It reads the prompt's sections (`prompt_format`), turns every
passage into whole plain-text sentences (Markdown rendered as text, list items joined to
their lead-in, table rows spelled out: `plain_lines`), scores each against the customer's
question, and keeps the few that answer it best: the best sentence of the first passage that
touches the question (passages come ranked best first), then the closest others from the
same article, in document order, so the reply reads as one answer from one page. It adds a
greeting and a closing, and answers with the same JSON contract as a real model
(`structured`), citing the passages it took sentences from. When no sentence is close
enough, or there are no passages, it says the question is not answerable instead of
guessing. Same input, same output.

Scoring (`LLM_EXTRACTIVE_SCORER`): "embedding" (cosine similarity with all-MiniLM-L6-v2
through `apps.llm.embeddings`, the default: it matches paraphrases such as "money back" /
"refund") or "lexical" (content-word overlap, no model). benchmarks/llm_overhead.py measures
both on a small built-in question set.

`provider.py` wraps `draft_compose` as a litellm custom provider.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from apps.llm.prompt_format import ParsedPrompt, Passage

GREETING = "Hello,"
CLOSING = "I hope this helps. If anything is still unclear, just reply to this message."
NOT_ANSWERABLE_REPLY = (
    "Thank you for your message. I am passing it to a member of our team, "
    "who will get back to you shortly."
)
MAX_SENTENCES = 3
# Below these a sentence is not an answer; a kept sentence must also be close to the best one.
EMBEDDING_MIN_SCORE = 0.35
LEXICAL_MIN_SCORE = 0.2
RELATIVE_TO_BEST = 0.75
# The first passage (the retrieval's best source) leads the reply when one of its sentences
# reaches this share of the minimum: a later passage with a closer sentence does not take
# the first citation from it unless it barely touches the question.
LEAD_SHARE_OF_MINIMUM = 0.5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = """
    a an and are as at be been but by can could did do does for from had has have how i if
    in into is it its me my no not of on or our please so that the their them then there these
    they this to us was we were what when where which who why will with would you your yours
    hello hi thanks thank"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Sentence:
    passage_index: int
    position: int
    passage_id: str
    text: str
    source: str = ""  # the passage's article


@dataclass(frozen=True)
class Draft:
    reply: str
    citations: tuple[str, ...]
    answerable: bool
    best_score: float

    def as_json(self) -> str:
        # "reply" first: the stream extractor shows it before the rest arrives.
        return json.dumps(
            {"reply": self.reply, "citations": list(self.citations), "answerable": self.answerable},
            ensure_ascii=False,
        )


_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_LINK = re.compile(r"!?\[([^\]]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE = re.compile(r"`([^`]+)`")
# A cross-reference to another page ("(see How to return an item)") is not an answer.
_SEE_ALSO = re.compile(r"\s*\((?:see|cf\.?)\s(?:[^()]|\([^()]*\))*\)", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_TRAILING_JOIN = re.compile(r"[\s,;]+(?:and|or)?[\s,;]*$", re.IGNORECASE)
_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")


def markdown_plain(text: str) -> str:
    """Inline Markdown as plain text: emphasis dropped, a link as its text and its address
    ("Business orders (https://...)"), code as its text."""
    text = _LINK.sub(lambda match: f"{match.group(1)} ({match.group(2)})", text)
    text = _CODE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    return _EMPHASIS.sub(r"\2", text)


def _table_row(cells: list[str], header: list[str] | None) -> str:
    first, rest = cells[0], cells[1:]
    if header and len(header) == len(cells):
        details = "; ".join(f"{name}: {cell}" for name, cell in zip(header[1:], rest, strict=True))
    else:
        details = "; ".join(rest)
    return f"{first} — {details}." if details else f"{first}."


def _sentence(text: str) -> str:
    """`text` as a whole sentence: a capital first, a full stop last."""
    text = _TRAILING_JOIN.sub("", text).strip()
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else f"{text}."


def plain_lines(text: str) -> list[str]:
    """A passage's lines as whole plain-text sentences: no headings, Markdown or rules.

    A list whose items continue a lead-in ("some items can only be returned if they are
    faulty:" then "- pillows and duvets ...,") becomes one sentence, lead-in and items; a
    list of items that are sentences of their own stays one sentence an item. A table row
    reads "first cell — column: cell; ...". A lead-in with no list after it says nothing on
    its own and is left out.
    """
    lines = [line.strip() for line in text.splitlines()]
    result: list[str] = []
    header: list[str] | None = None
    lead_in = ""
    items: list[str] = []

    def close_list() -> None:
        nonlocal lead_in, items
        if items and all(item[:1].islower() for item in items):
            # The items' own joining words ("..., or") are kept; a bare item gets a comma.
            pieces = [item.rstrip(" ;") for item in items]
            joined = " ".join(
                piece if piece.endswith((",", " or", " and")) or last else f"{piece},"
                for last, piece in ((i == len(pieces) - 1, p) for i, p in enumerate(pieces))
            )
            result.append(_sentence(f"{lead_in} {joined}" if lead_in else joined))
        else:
            result.extend(filter(None, (_sentence(item) for item in items)))
        lead_in, items = "", []

    for index, line in enumerate(lines):
        if not line:
            if items:  # a blank line between a lead-in and its list keeps the lead-in
                close_list()
            continue
        if line.startswith("#") or set(line) <= set("-=*_ "):
            close_list()
            continue
        if _BULLET.match(line):
            item = _SEE_ALSO.sub("", markdown_plain(_BULLET.sub("", line))).strip()
            if item:
                items.append(item)
            continue
        close_list()
        if line.startswith("|"):
            if _TABLE_RULE.match(line):
                continue
            cells = [markdown_plain(cell.strip()) for cell in line.strip("|").split("|")]
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if following.startswith("|") and _TABLE_RULE.match(following):
                header = cells  # the row above the rule names the columns
                continue
            result.append(_table_row(cells, header))
            continue
        header = None
        line = _SEE_ALSO.sub("", markdown_plain(line)).strip()
        if line.endswith(":"):
            lead_in = line  # kept only for the list that follows it
            continue
        if line:
            result.append(line)
    close_list()
    return result


def sentences_split(passage_index: int, passage: Passage) -> list[Sentence]:
    """The passage's whole sentences, as plain text (`plain_lines`)."""
    result: list[Sentence] = []
    for line in plain_lines(passage.text):
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip()
            if len(_WORD.findall(piece.lower())) >= 3:
                result.append(
                    Sentence(passage_index, len(result), passage.id, piece, passage.source)
                )
    return result


def _content_words(text: str) -> set[str]:
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        # A crude stem so "refunds"/"refunded"/"refund" meet; enough for overlap scoring.
        for suffix in ("ing", "ed", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        words.add(word)
    return words


def lexical_scores(question: str, sentences: Sequence[Sentence]) -> list[float]:
    """Share of the question's content words found in each sentence, in [0, 1]."""
    asked = _content_words(question)
    if not asked:
        return [0.0 for _ in sentences]
    scores = []
    for sentence in sentences:
        found = _content_words(sentence.text)
        overlap = len(asked & found)
        # Dividing by sqrt of the sentence's size keeps long sentences from winning by bulk.
        scores.append(overlap / math.sqrt(len(asked) * max(len(found), 1)))
    return scores


_vector_cache: OrderedDict[str, list[float]] = OrderedDict()
_vector_cache_lock = threading.Lock()
VECTOR_CACHE_SIZE = 20_000  # sentences; ~35 MB of floats at 384 dimensions


def _sentence_vectors(texts: list[str]) -> list[list[float]]:
    """Embeddings of `texts`, reusing those seen before in this process.

    The same knowledge-base passages come back for many questions, so after warm-up only
    the question itself is embedded.
    """
    from apps.llm import embeddings

    with _vector_cache_lock:
        missing = [t for t in dict.fromkeys(texts) if t not in _vector_cache]
    fresh = dict(zip(missing, embeddings.embed(missing), strict=True)) if missing else {}
    with _vector_cache_lock:
        _vector_cache.update(fresh)
        for text in texts:
            _vector_cache.move_to_end(text)
        vectors = [_vector_cache[text] for text in texts]
        while len(_vector_cache) > VECTOR_CACHE_SIZE:
            _vector_cache.popitem(last=False)
    return vectors


def embedding_scores(question: str, sentences: Sequence[Sentence]) -> list[float]:
    """Cosine similarity of each sentence to the question (unit vectors: a dot product)."""
    from apps.llm import embeddings

    asked = embeddings.embed([question])[0]
    vectors = _sentence_vectors([s.text for s in sentences])
    return [sum(a * b for a, b in zip(asked, vector, strict=True)) for vector in vectors]


def _scores(question: str, sentences: Sequence[Sentence], scorer: str) -> list[float]:
    if scorer == "embedding":
        return embedding_scores(question, sentences)
    return lexical_scores(question, sentences)


def draft_compose(prompt: ParsedPrompt, *, scorer: str = "embedding") -> Draft:
    """The extractive draft for a parsed prompt. Deterministic; no side effects.

    A follow-up (the prompt has a conversation) is read in its light: a sentence scores the
    better of its closeness to the message alone and to the message after what it may
    refer to (the customer's open questions, else their previous message), so "is there a
    fee for that?" finds the fee of what "that" was. Open questions nobody answered get
    their best sentence too, after the newest message's answer.
    """
    question = prompt.customer_message.strip()
    sentences = [
        sentence
        for index, passage in enumerate(prompt.passages)
        for sentence in sentences_split(index, passage)
    ]
    if not question or not sentences:
        return Draft(NOT_ANSWERABLE_REPLY, (), False, 0.0)
    minimum = EMBEDDING_MIN_SCORE if scorer == "embedding" else LEXICAL_MIN_SCORE
    scores = _scores(question, sentences, scorer)
    open_questions = [t.text for t in prompt.conversation if t.open and t.role == "customer"]
    earlier = open_questions or [t.text for t in prompt.conversation if t.role == "customer"][-1:]
    if earlier:
        in_context = _scores("\n".join([*earlier, question]), sentences, scorer)
        scores = [max(alone, read) for alone, read in zip(scores, in_context, strict=True)]
    best = max(scores)
    if best < minimum:
        return Draft(NOT_ANSWERABLE_REPLY, (), False, round(best, 4))
    chosen = _answer(scores, sentences, minimum)
    extra: list[int] = []
    for open_question in open_questions:
        open_scores = _scores(open_question, sentences, scorer)
        ranked = sorted(range(len(sentences)), key=lambda i: (-round(open_scores[i], 6), i))
        found = next((i for i in ranked if i not in chosen and i not in extra), None)
        if found is not None and open_scores[found] >= minimum:
            extra.append(found)
    paragraphs = [" ".join(sentences[i].text for i in chosen)]
    if extra:
        paragraphs.append(" ".join(sentences[i].text for i in sorted(extra)))
    citations = tuple(dict.fromkeys(sentences[i].passage_id for i in [*chosen, *sorted(extra)]))
    body = "\n\n".join(paragraphs)
    return Draft(f"{GREETING}\n\n{body}\n\n{CLOSING}", citations, True, round(best, 4))


def _answer(scores: list[float], sentences: list[Sentence], minimum: float) -> list[int]:
    """The sentences that answer best, in document order (see the module's docstring)."""
    best = max(scores)
    # Ties go to the earlier sentence, so the choice never depends on float noise ordering.
    ranked = sorted(range(len(sentences)), key=lambda i: (-round(scores[i], 6), i))
    # Passages come best first (the copilot ranks them): the reply leads with the best
    # sentence of the first passage that touches the question (LEAD_SHARE_OF_MINIMUM), so
    # its first citation is the retrieval's best source, not whichever passage holds the
    # single closest sentence.
    lead_passage = min(
        sentences[i].passage_index for i in ranked if scores[i] >= minimum * LEAD_SHARE_OF_MINIMUM
    )
    lead = next(i for i in ranked if sentences[i].passage_index == lead_passage)
    # The rest of the answer comes from the lead's article only: a reply reads as one answer
    # from one page, not a sentence from each page the search found.
    keep = [
        i
        for i in ranked
        if i != lead
        and sentences[i].source == sentences[lead].source
        and scores[i] >= max(minimum, best * RELATIVE_TO_BEST)
    ]
    return sorted([lead, *keep[: MAX_SENTENCES - 1]])
