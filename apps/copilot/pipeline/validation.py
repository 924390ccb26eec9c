"""Checks on a draft before anyone sees it: citations, links, groundedness.

Pure functions over plain data, so the pipeline, the evaluation runs and the tests all
judge a draft the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from apps.safety.output import output_check

# Words too common to show that a sentence is supported by a passage.
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either few
    for from further had has have having he her here hers him his how i if in into is it its
    just let me more most my no nor not now of off on once only or other our ours out over
    own please same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours hi hello thanks thank regards best dear""".split()
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'\u2019\-]*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
URL_PATTERN = re.compile(r"""https?://[^\s<>"'()\[\]{}]+""", re.IGNORECASE)
# A reply sentence with fewer content words than this is chit-chat (greeting, closing).
MIN_CLAIM_WORDS = 3


@dataclass(frozen=True)
class EvidencePassage:
    """A retrieved passage as validation needs it."""

    id: str
    text: str
    url: str = ""


@dataclass(frozen=True)
class ValidationResult:
    citations_valid: bool
    invalid_citations: tuple[str, ...]
    links_valid: bool
    foreign_links: tuple[str, ...]
    groundedness: float  # 0..1: share of the reply's claim words found in the passages
    grounded: bool
    unsupported_sentences: tuple[str, ...] = field(default=())
    # The output guard's findings ({"kind", "text"}): links, contacts, prompt leaks,
    # commitments no passage states (apps.safety.output).
    unsafe: tuple[dict, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.citations_valid and self.links_valid and self.grounded and not self.unsafe

    def as_dict(self) -> dict:
        return {
            "citations_valid": self.citations_valid,
            "invalid_citations": list(self.invalid_citations),
            "links_valid": self.links_valid,
            "foreign_links": list(self.foreign_links),
            "groundedness": round(self.groundedness, 4),
            "grounded": self.grounded,
            "unsupported_sentences": list(self.unsupported_sentences),
            "unsafe": list(self.unsafe),
        }


def content_words(text: str) -> set[str]:
    words = {match.group(0).lower().strip("'\u2019-") for match in _WORD.finditer(text)}
    return {word for word in words if len(word) > 1 and word not in STOPWORDS}


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _normalise_url(url: str) -> str:
    return url.rstrip(".,;:!?").rstrip("/").lower()


def links_in(text: str) -> list[str]:
    return [_normalise_url(match.group(0)) for match in URL_PATTERN.finditer(text)]


def known_links(passages: Iterable[EvidencePassage], extra: Iterable[str] = ()) -> set[str]:
    """Links a reply may contain: the passages' article URLs, links inside them, and `extra`."""
    allowed = {_normalise_url(url) for url in extra if url}
    for passage in passages:
        if passage.url:
            allowed.add(_normalise_url(passage.url))
        allowed.update(links_in(passage.text))
    return allowed


def _courtesy_key(sentence: str) -> str:
    return " ".join(sorted(content_words(sentence)))


def groundedness(
    reply: str, passages: Sequence[EvidencePassage], courtesy: Iterable[str] = ()
) -> tuple[float, list[str]]:
    """Share of the reply's claim words found in the passages, and the unsupported sentences.

    A claim sentence (≥ MIN_CLAIM_WORDS content words) is unsupported when fewer than half of
    its content words appear in the passages. Lexical on purpose: cheap, deterministic, and
    strict about invented numbers and names, which is what ungrounded replies get wrong.
    """
    evidence = (
        set().union(*(content_words(passage.text) for passage in passages)) if passages else set()
    )
    supported_words = 0
    claim_words = 0
    unsupported: list[str] = []
    # The drafter's fixed greeting and closing claim nothing about the question.
    skipped = {_courtesy_key(part) for text in courtesy for part in sentences(text)}
    # Links are judged by the link check, not as words.
    for sentence in sentences(URL_PATTERN.sub(" ", reply)):
        words = content_words(sentence)
        if len(words) < MIN_CLAIM_WORDS or _courtesy_key(sentence) in skipped:
            continue
        found = len(words & evidence)
        claim_words += len(words)
        supported_words += found
        if found / len(words) < 0.5:
            unsupported.append(sentence)
    if claim_words == 0:
        return 0.0, unsupported
    return supported_words / claim_words, unsupported


def draft_validate(
    *,
    reply: str,
    citations: Sequence[str],
    passages: Sequence[EvidencePassage],
    allowed_links: Iterable[str] = (),
    grounded_threshold: float = 0.7,
    courtesy: Iterable[str] = (),
    customer_text: str = "",
    system_prompt: str = "",
    canary: str = "",
) -> ValidationResult:
    """Validate a draft against the passages it was given.

    - every citation must be the id of a given passage;
    - every link in the reply must be a knowledge-base link (a passage's article URL, a link
      inside a passage, or one of `allowed_links`);
    - the reply is grounded when its claims' words are found in the passages at least at
      `grounded_threshold` and no claim sentence is unsupported; an empty reply is ungrounded.
      Sentences of `courtesy` (the drafter's fixed greeting and closing) are not claims;
    - the output guard finds nothing unsafe: a link or contact detail the knowledge base (or
      the customer) does not have, the system prompt or its `canary`, a commitment no passage
      states.
    """
    passage_ids = {passage.id for passage in passages}
    invalid = tuple(citation for citation in citations if citation not in passage_ids)
    allowed = known_links(passages, allowed_links)
    foreign = tuple(link for link in links_in(reply) if link not in allowed)
    score, unsupported = groundedness(reply, passages, courtesy)
    grounded = bool(reply.strip()) and score >= grounded_threshold and not unsupported
    return ValidationResult(
        citations_valid=not invalid,
        invalid_citations=invalid,
        links_valid=not foreign,
        foreign_links=foreign,
        groundedness=score,
        grounded=grounded,
        unsupported_sentences=tuple(unsupported),
        unsafe=tuple(
            output_check(
                reply=reply,
                evidence=[passage.text for passage in passages],
                known_urls=[*(p.url for p in passages), *allowed_links],
                customer_text=customer_text,
                system_prompt=system_prompt,
                canary=canary,
            )
        ),
    )
