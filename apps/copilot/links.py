"""Intent→article links learned from the intents' training examples.

An intent's examples are what customers with that intent write; the article that the
knowledge search ranks first for most of them is the article that answers the intent. For
each intent, a few examples (spread over all of them) are searched exactly as the pipeline
searches a customer message, and the article ranked first for at least LEARN_MIN_SHARE of
them is linked, with that share as the link's weight. Admin links are never touched, and
they win over learned ones for their intent (selectors.intents_article_weights).

Then the article must be about the intent: the classifier reads the article's passages
(their stored embeddings; a classifier with the encoder-layer block reads them with its
passage reader, which leaves that block out: see triage's PassageReader), and unless one of
them gives the intent at least LINK_MIN_PASSAGE_PROBABILITY the link is dropped.
Customers' questions of an intent the knowledge base does not answer still find its nearest
article ("the ATM ate my card" finds the PIN and activation page, "a disposable virtual
card" the virtual cards page); such a link would make the pipeline send that article
confidently. Measured on the Birchwood help center (8 Banking77 intents without an article)
with the classifier before the encoder-layer block: every such near miss has at most 0.05,
while 4 of 62 answered intents fall under 0.1 too and lose their learned link (their
questions go to review unless an admin links them); on Ashgrove 5 of 71. With the shipped
classifier's passage reader (November 2026, through benchmarks/acceptance.py): the nearest
miss, "get_disposable_virtual_card" on the virtual cards page, reads 0.07; Birchwood links 62
of its 69 answered intents to the right article, Ashgrove 72 of 77; neither links any
intent wrongly or any unanswered intent.

The same reading also picks the article: among the articles at least LINK_READ_MIN_VOTES
examples found, the one whose passage reads most as the intent, if that is at least
LINK_READ_MIN_PROBABILITY, is linked even when the vote went elsewhere (the vote's winner is
often a neighbouring topic's page: "I can't verify my identity" finds the identity page, not
the page about a rejected verification), with the stronger of its share and its reading as
the weight. Measured (before the encoder-layer block) on both banks' learned links against
their intent→article mappings (Birchwood 55 right and 2 wrong → 62 and 0; Ashgrove 64 and
2 → 71 and 0; no unanswered intent linked); through the pipeline at the shipped calibration
Birchwood went from 50.6% auto-sent at 96.8% to 67.2% at 97.1%, Ashgrove from 63.0% at
99.0% to 76.0% at 98.3%.

Links are learned per (active classifier version, knowledge version). Beat checks every
minute and relearns after a retraining or a knowledge-base change. The pipeline checks at
each message (one indexed query) and learns them itself only for a classifier version with
no links yet, so the very first messages after `triage_train --activate` on a fresh
instance are drafted with them. It costs seconds, once (77 intents x 12 examples: one batch
of embeddings and ~900 searches); an advisory lock keeps two learnings from running at once.
A message that finds another worker learning a classifier's first links waits for them (up
to FIRST_LINKS_WAIT_SECONDS): without them every answer of a fresh instance's first
seconds would go to review (measured through `benchmarks/acceptance.py`: the 9 tickets the
worker drafted during beat's 12-second learning on Birchwood all did). After a
knowledge-base change it never waits: it drafts with the links it has, unless those are
none (a classifier trained before the articles were imported learned none).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import Counter
from datetime import timedelta

import numpy as np
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from apps.copilot.models import IntentArticleLink, LinkLearning, LinkSource
from apps.core.exceptions import ValidationError
from apps.knowledge.selectors import article_passages, chunk_search, knowledge_version
from apps.llm import embeddings
from apps.triage.selectors import classifier_version_active_id, training_texts_sample
from apps.triage.services import texts_intent_probabilities

LEARN_EXAMPLES_PER_INTENT = 12
# A clear majority of the examples must agree, or the intent gets no learned link.
LEARN_MIN_SHARE = 0.5
# ...and one of the article's passages must read as the intent to the classifier (its
# passage reader, if it has one).
LINK_MIN_PASSAGE_PROBABILITY = 0.1
# An article found by a few of the examples (not the majority) that reads clearly as the
# intent is linked instead: the vote's winner may be a neighbouring topic's page.
LINK_READ_MIN_VOTES = 2
LINK_READ_MIN_PROBABILITY = 0.5
RELEARN_PAUSE_SECONDS = 60
# How long a message waits for another worker learning a classifier's first links.
FIRST_LINKS_WAIT_SECONDS = 60.0
logger = logging.getLogger(__name__)
LEARNING_LOCK_KEY = zlib.crc32(b"deskpilot.copilot.link_learning")
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout that ran out


def intent_votes(*, texts_by_intent: dict[str, list[str]]) -> dict[str, Counter[int]]:
    """intent → how many of its texts each article was the first search result for."""
    flat = [(intent, text[:2000]) for intent, texts in texts_by_intent.items() for text in texts]
    vectors = embeddings.embed([text for _, text in flat]) if flat else []
    votes: dict[str, Counter[int]] = {intent: Counter() for intent in texts_by_intent}
    for (intent, text), vector in zip(flat, vectors, strict=True):
        try:
            hits = chunk_search(query=text, k=1, query_vector=vector)
        except ValidationError:  # an example with nothing searchable votes for nothing
            continue
        if hits:
            votes[intent][hits[0].article_id] += 1
    return votes


def links_from_votes(
    votes: dict[str, Counter[int]], *, examples: dict[str, int], min_share: float
) -> dict[str, tuple[int, float]]:
    """intent → (article id, share of its examples) for the intents with a clear winner."""
    links = {}
    for intent, counter in votes.items():
        if not counter or not examples.get(intent):
            continue
        # Ties go to the lower article id, so the result never depends on ordering noise.
        article_id, count = min(counter.items(), key=lambda item: (-item[1], item[0]))
        share = count / examples[intent]
        if share >= min_share:
            links[intent] = (article_id, round(share, 4))
    return links


def passage_readings(pairs: set[tuple[str, int]]) -> dict[tuple[str, int], float] | None:
    """(intent, article id) → the highest probability the active classifier gives the intent
    on any passage of the article. Pairs it cannot judge are left out: an article without
    passages embedded by the current model (a re-embedding under way), an intent the
    classifier does not know. None when there is no classifier to read them with."""
    passages = article_passages(article_ids=sorted({article for _, article in pairs}))
    scored = texts_intent_probabilities(
        texts=[passage.text for passage in passages],
        vectors=np.array([passage.vector for passage in passages], dtype=np.float32),
    )
    if scored is None:
        return None
    labels, probabilities = scored
    column = {name: position for position, name in enumerate(labels)}
    rows_of: dict[int, list[int]] = {}
    for row, passage in enumerate(passages):
        rows_of.setdefault(passage.article_id, []).append(row)
    readings = {}
    for intent, article_id in pairs:
        rows = rows_of.get(article_id)
        position = column.get(intent)
        if rows is not None and position is not None:
            readings[(intent, article_id)] = float(probabilities[rows, position].max())
    return readings


def links_read(
    votes: dict[str, Counter[int]],
    readings: dict[tuple[str, int], float] | None,
    *,
    examples: dict[str, int],
    min_votes: int,
    min_probability: float,
) -> dict[str, tuple[int, float]]:
    """intent → (article id, weight) for the intents that an article found by at least
    `min_votes` of their examples reads as, with probability ≥ `min_probability`: the one
    that reads most as the intent, whatever its share of the vote. Its weight is the
    stronger of its share and its reading."""
    if readings is None:
        return {}
    links = {}
    for intent, counter in votes.items():
        strong = [
            (readings[(intent, article_id)], -article_id)
            for article_id, count in counter.items()
            if count >= min_votes and readings.get((intent, article_id), 0.0) >= min_probability
        ]
        if strong and examples.get(intent):
            reading, negated = max(strong)
            share = counter[-negated] / examples[intent]
            links[intent] = (-negated, round(max(share, reading), 4))
    return links


def links_supported(
    links: dict[str, tuple[int, float]],
    readings: dict[tuple[str, int], float] | None,
    *,
    min_probability: float,
) -> dict[str, tuple[int, float]]:
    """The links whose article reads as their intent, and those that could not be judged."""
    if readings is None:
        return links
    return {
        intent: (article_id, weight)
        for intent, (article_id, weight) in links.items()
        if readings.get((intent, article_id), min_probability) >= min_probability
    }


def intent_links_learn(
    *, classifier_version_id: int, knowledge_version: str, wait: float | None = None
) -> LinkLearning | None:
    """Learn the links afresh and record it for (classifier version, knowledge version).

    Replaces every link learned from examples (admin and accepted-draft links stay).
    Idempotent: when the pair was learned already, its record is returned and nothing runs.
    Runs in one transaction under an advisory lock, so concurrent callers wait for one run
    (and then find its record); with `wait` seconds, a caller still waiting for it after
    that long returns None instead (0: at once).
    """
    started = time.monotonic()
    try:
        with transaction.atomic():
            if not _learning_lock(wait):
                return None
            return _learn(classifier_version_id, knowledge_version, started)
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        logger.info("links still being learned elsewhere after %s s; going on without", wait)
        return None


def _learning_lock(wait: float | None) -> bool:
    """Takes the learning's advisory lock for this transaction; False when `wait` is 0 and
    it is taken. A `wait` that runs out raises OperationalError (lock_timeout)."""
    with connection.cursor() as cursor:
        if wait == 0:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LEARNING_LOCK_KEY])
            row = cursor.fetchone()
            return bool(row and row[0])
        if wait is not None:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(wait * 1000)}ms"])
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LEARNING_LOCK_KEY])
        if wait is not None:
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
    return True


def _learn(classifier_version_id: int, knowledge_version: str, started: float) -> LinkLearning:
    done = LinkLearning.objects.filter(
        classifier_version_id=classifier_version_id, knowledge_version=knowledge_version
    ).first()
    if done is not None:
        return done
    sample = training_texts_sample(per_intent=LEARN_EXAMPLES_PER_INTENT)
    votes = intent_votes(texts_by_intent=sample)
    examples = {intent: len(texts) for intent, texts in sample.items()}
    voted = links_from_votes(votes, examples=examples, min_share=LEARN_MIN_SHARE)
    pairs = {
        (intent, article_id)
        for intent, counter in votes.items()
        for article_id, count in counter.items()
        if count >= LINK_READ_MIN_VOTES
    } | {(intent, article_id) for intent, (article_id, _) in voted.items()}
    readings = passage_readings(pairs) if pairs else None
    learned = {
        **links_supported(voted, readings, min_probability=LINK_MIN_PASSAGE_PROBABILITY),
        **links_read(
            votes,
            readings,
            examples=examples,
            min_votes=LINK_READ_MIN_VOTES,
            min_probability=LINK_READ_MIN_PROBABILITY,
        ),
    }
    unsupported = sorted(set(voted) - set(learned))
    if unsupported:
        logger.info(
            "no learned link for %d intent(s) whose voted article has no passage about them: %s",
            len(unsupported),
            ", ".join(unsupported),
        )
    IntentArticleLink.objects.filter(source=LinkSource.LEARNED_FROM_EXAMPLES).delete()
    IntentArticleLink.objects.bulk_create(
        [
            IntentArticleLink(
                intent_name=intent,
                article_id=article_id,
                source=LinkSource.LEARNED_FROM_EXAMPLES,
                weight=share,
            )
            for intent, (article_id, share) in sorted(learned.items())
        ]
    )
    return LinkLearning.objects.create(
        classifier_version_id=classifier_version_id,
        knowledge_version=knowledge_version,
        intents=len(sample),
        examples=sum(len(texts) for texts in sample.values()),
        links=len(learned),
        unsupported=len(unsupported),
        seconds=round(time.monotonic() - started, 3),
    )


def intent_links_ensure(
    *, classifier_version_id: int | None, knowledge_version: str, from_pipeline: bool = False
) -> bool:
    """Make the learned links current for the pair; True when they were learned just now.

    Nothing without an active classifier (nothing to learn from). One indexed query when
    the links are current, which is every message but the first after a change.
    `from_pipeline`: the caller is a customer's message. It learns only for a classifier
    version that has no links yet (a fresh instance's first messages; also when its last
    learning found none, e.g. the classifier was trained before the articles were imported),
    waiting up to FIRST_LINKS_WAIT_SECONDS for another worker already learning them; after
    any other knowledge-base change it drafts with the links it has and leaves relearning to
    beat (`copilot.intent_links_refresh`).
    """
    if classifier_version_id is None:
        return False
    if LinkLearning.objects.filter(
        classifier_version_id=classifier_version_id, knowledge_version=knowledge_version
    ).exists():
        return False
    previous = (
        LinkLearning.objects.filter(classifier_version_id=classifier_version_id)
        .order_by("-created_at")
        .first()
    )
    if previous is not None and previous.links > 0:
        if from_pipeline:
            return False
        # While a knowledge base is being imported its version changes with every article:
        # relearn at most once a pause, for the knowledge base as it is then.
        if previous.created_at >= timezone.now() - timedelta(seconds=RELEARN_PAUSE_SECONDS):
            return False
    learned = intent_links_learn(
        classifier_version_id=classifier_version_id,
        knowledge_version=knowledge_version,
        wait=FIRST_LINKS_WAIT_SECONDS if from_pipeline else None,
    )
    return learned is not None


def intent_links_learn_active() -> LinkLearning | None:
    """Learn (or find) the links for the active classifier over the current knowledge base."""
    version_id = classifier_version_active_id()
    if version_id is None:
        return None
    return intent_links_learn(
        classifier_version_id=version_id, knowledge_version=knowledge_version()
    )


def intent_links_ensure_active() -> bool:
    """`intent_links_ensure` for the active classifier over the current knowledge base: run
    by beat every minute, so the links are usually learned before the first customer
    message after a retraining or an import, not inside its pipeline run."""
    return intent_links_ensure(
        classifier_version_id=classifier_version_active_id(),
        knowledge_version=knowledge_version(),
    )
