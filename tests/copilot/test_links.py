"""Intent→article links: learned from the intents' training examples and from drafts agents
send as they are; admin links win."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.copilot import links
from apps.copilot.links import (
    LEARNING_LOCK_KEY,
    intent_links_ensure,
    links_from_votes,
    links_read,
    links_supported,
)
from apps.copilot.models import IntentArticleLink, LinkLearning, LinkSource
from apps.copilot.selectors import intent_article_weights
from apps.copilot.services import draft_send, pipeline_run
from apps.copilot.tasks import intent_links_learn_task, intent_links_refresh_task
from apps.knowledge.models import Article, ArticleStatus
from apps.knowledge.selectors import knowledge_version
from apps.triage.csv_import import LabelledText
from apps.triage.models import ClassifierVersion
from apps.triage.services import training_examples_import
from tests.conftest import wait_for
from tests.copilot.conftest import INTENTS, _training_rows, customer_ticket

pytestmark = pytest.mark.django_db


def _learned() -> dict[str, str]:
    return {
        link.intent_name: link.article.external_id
        for link in IntentArticleLink.objects.filter(
            source=LinkSource.LEARNED_FROM_EXAMPLES
        ).select_related("article")
    }


@pytest.fixture
def examples_stored(copilot_ready) -> ClassifierVersion:  # type: ignore[no-untyped-def]
    """The classifier's training examples in the database, and no admin links."""
    training_examples_import(rows=[LabelledText(text=t, intent=i) for t, i in _training_rows()])
    IntentArticleLink.objects.all().delete()
    return ClassifierVersion.objects.get(is_active=True)


def test_links_from_votes_keeps_a_clear_majority_with_its_share_as_weight():
    # given: intent a: 6 of 8 examples find article 1; b: split 3/3/2; c: no example found any
    votes = {"a": Counter({1: 6, 2: 2}), "b": Counter({3: 3, 4: 3, 5: 2}), "c": Counter()}
    # when
    links = links_from_votes(votes, examples={"a": 8, "b": 8, "c": 8}, min_share=0.5)
    # then
    assert links == {"a": (1, 0.75)}


def test_links_from_votes_breaks_ties_by_the_lower_article_id():
    # given / when
    links = links_from_votes({"a": Counter({9: 4, 2: 4})}, examples={"a": 8}, min_share=0.5)
    # then
    assert links == {"a": (2, 0.5)}


@pytest.mark.slow
def test_each_intent_is_linked_to_the_article_its_examples_find(examples_stored, tiny_kb):
    # given
    version = examples_stored
    # when
    learned_now = intent_links_ensure(
        classifier_version_id=version.id, knowledge_version=knowledge_version()
    )
    # then: every intent answered by a public article got it (goodwill's is internal)
    assert learned_now is True
    learned = _learned()
    for intent in ("reset_password", "refund_status", "track_order", "charged_twice"):
        assert learned[intent] == INTENTS[intent][1]
    learning = LinkLearning.objects.get()
    assert (learning.classifier_version_id, learning.intents) == (version.id, len(INTENTS))
    assert learning.examples == len(INTENTS) * 10  # all 10 of each (fewer than 12)
    weights = IntentArticleLink.objects.filter(source=LinkSource.LEARNED_FROM_EXAMPLES)
    assert all(0.5 <= link.weight <= 1.0 for link in weights)


def test_links_read_prefers_the_article_that_reads_as_the_intent_over_the_vote():
    # given: a's examples mostly find article 1, a few find 2, which reads clearly as a;
    # b's only clear reading is of an article one example found; c's winner reads as c
    votes = {"a": Counter({1: 8, 2: 3}), "b": Counter({3: 6, 4: 1}), "c": Counter({5: 7})}
    readings = {("a", 1): 0.3, ("a", 2): 0.97, ("b", 3): 0.2, ("b", 4): 0.99, ("c", 5): 0.6}
    examples = {"a": 12, "b": 12, "c": 12}
    # when
    links = links_read(votes, readings, examples=examples, min_votes=2, min_probability=0.5)
    # then: the weight is the stronger of the share and the reading
    assert links == {"a": (2, 0.97), "c": (5, 0.6)}
    assert links_read(votes, None, examples=examples, min_votes=2, min_probability=0.5) == {}


def test_links_supported_drops_links_under_the_bar_and_keeps_those_it_could_not_judge():
    # given: c's article has no passage embedded by the current model (a re-embedding)
    links = {"a": (1, 0.9), "b": (2, 0.6), "c": (3, 0.5)}
    readings = {("a", 1): 0.93, ("b", 2): 0.02}
    # when / then
    assert links_supported(links, readings, min_probability=0.1) == {"a": (1, 0.9), "c": (3, 0.5)}
    assert links_supported(links, None, min_probability=0.1) == links  # no classifier


@pytest.mark.slow
def test_an_article_the_examples_find_but_that_is_not_about_the_intent_is_not_linked(
    examples_stored,
):
    # given: the article answering charged_twice is gone, so most of its examples now find
    # the refund-timing page (a near miss: same topic, does not answer it); unauthorized
    # charges never had an article and half their examples find the charged-twice page
    version = examples_stored
    Article.objects.filter(external_id="billing/charged-twice.md").delete()
    # when
    intent_links_ensure(classifier_version_id=version.id, knowledge_version=knowledge_version())
    # then: no passage of the refund-timing page reads as charged_twice: no link, so its
    # questions are not answered from it with the confidence of a learned link
    learned = _learned()
    assert "charged_twice" not in learned
    assert "unauthorized_charge" not in learned
    assert learned["refund_status"] == "returns/refund-timing.md"
    assert learned["reset_password"] == "account/reset-password.md"
    assert LinkLearning.objects.get().unsupported == 2


@pytest.mark.slow
def test_links_are_learned_once_per_classifier_version_and_knowledge_base(examples_stored):
    # given
    version = examples_stored
    version_kb = knowledge_version()
    intent_links_ensure(classifier_version_id=version.id, knowledge_version=version_kb)
    links_before = IntentArticleLink.objects.count()
    # when: the same pair again; another knowledge-base version at once (an import under
    # way), and again after the pause
    again = intent_links_ensure(classifier_version_id=version.id, knowledge_version=version_kb)
    during_import = intent_links_ensure(classifier_version_id=version.id, knowledge_version="2")
    LinkLearning.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    changed = intent_links_ensure(classifier_version_id=version.id, knowledge_version="2")
    # then: the second learning replaced the learned links, it did not add to them
    assert (again, during_import, changed) == (False, False, True)
    assert LinkLearning.objects.count() == 2
    assert IntentArticleLink.objects.count() == links_before


def test_a_customer_message_after_a_knowledge_base_change_does_not_wait_for_learning(
    examples_stored,
):
    # given: links learned for this classifier on an earlier knowledge base, a while ago
    version = examples_stored
    intent_links_ensure(classifier_version_id=version.id, knowledge_version="old")
    LinkLearning.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    # when: the pipeline meets the new knowledge base, then beat does
    from_pipeline = intent_links_ensure(
        classifier_version_id=version.id, knowledge_version="new", from_pipeline=True
    )
    from_beat = intent_links_ensure(classifier_version_id=version.id, knowledge_version="new")
    # then: the customer's message drafted with the links it had; beat relearned them
    assert (from_pipeline, from_beat) == (False, True)
    assert sorted(LinkLearning.objects.values_list("knowledge_version", flat=True)) == [
        "new",
        "old",
    ]


@contextmanager
def learning_elsewhere(release_after: float | None = None) -> Iterator[None]:
    """Another worker learning links: a second connection holds the learning's lock, until
    `release_after` seconds have passed (None: until the block ends)."""
    params = connection.get_connection_params()
    holder = psycopg.connect(
        **{
            key: params[key]
            for key in ("dbname", "user", "password", "host", "port")
            if key in params
        },
        autocommit=True,
    )
    holder.execute("SELECT pg_advisory_lock(%s)", [LEARNING_LOCK_KEY])
    release = threading.Timer(release_after or 0, holder.close)
    if release_after is not None:
        release.start()
    try:
        yield
    finally:
        release.cancel()
        holder.close()  # closing the session releases its advisory lock


@pytest.mark.slow
def test_a_first_message_waits_for_the_first_links_another_worker_is_learning(examples_stored):
    # given: a fresh instance whose first links are being learned elsewhere for a second
    version = examples_stored
    started = time.monotonic()
    with learning_elsewhere(release_after=1.0):
        # when: a customer's message needs them meanwhile
        learned_now = intent_links_ensure(
            classifier_version_id=version.id,
            knowledge_version=knowledge_version(),
            from_pipeline=True,
        )
    # then: it waited for the lock instead of drafting without links, then had them
    assert time.monotonic() - started >= 1.0
    assert learned_now is True
    assert LinkLearning.objects.count() == 1
    assert _learned()["reset_password"] == "account/reset-password.md"


def test_a_first_message_waits_for_learning_only_so_long(examples_stored, monkeypatch):
    # given: learning elsewhere that outlasts the wait
    monkeypatch.setattr(links, "FIRST_LINKS_WAIT_SECONDS", 0.3)
    version = examples_stored
    with learning_elsewhere():
        # when
        started = time.monotonic()
        learned_now = intent_links_ensure(
            classifier_version_id=version.id,
            knowledge_version=knowledge_version(),
            from_pipeline=True,
        )
        waited = time.monotonic() - started
    # then: it gave up after the wait and drafts without links; the connection is still
    # usable, with no lock timeout left behind for the rest of the message's work
    assert learned_now is False
    assert 0.3 <= waited < 5
    assert LinkLearning.objects.count() == 0
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == ("0",)


@pytest.mark.slow
def test_a_classifier_trained_before_the_articles_were_imported_gets_links_at_the_first_message(
    examples_stored,
):
    # given: beat learned links while no article was published (none), then the articles
    # were published
    version = examples_stored
    Article.objects.update(status=ArticleStatus.DRAFT)
    intent_links_ensure(classifier_version_id=version.id, knowledge_version=knowledge_version())
    assert LinkLearning.objects.get().links == 0
    Article.objects.update(status=ArticleStatus.PUBLISHED, updated_at=timezone.now())
    # when: the first customer message comes at once
    learned_now = intent_links_ensure(
        classifier_version_id=version.id,
        knowledge_version=knowledge_version(),
        from_pipeline=True,
    )
    # then: it learned them rather than drafting every answer without a link
    assert learned_now is True
    assert _learned()["reset_password"] == "account/reset-password.md"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_import_that_changes_the_knowledge_base_has_a_worker_relearn_the_links_at_once(
    examples_stored, celery_worker_process, tmp_path
):
    # given: links learned over the knowledge base as it was (beat would wait its pause)
    version = examples_stored
    intent_links_ensure(classifier_version_id=version.id, knowledge_version=knowledge_version())
    (tmp_path / "gift-cards.md").write_text(
        "# Gift cards\n\nGift cards can be bought in any amount from 10 to 500 euros.\n"
    )
    # when: an import adds an article
    call_command("kb_import", str(tmp_path), "--source", "extra", stdout=io.StringIO())
    # then: a worker learns the links over the new knowledge base, with no message or beat
    after_import = knowledge_version()
    learning = wait_for(
        lambda: LinkLearning.objects.filter(knowledge_version=after_import).first(), timeout=60
    )
    assert learning.classifier_version_id == version.id
    assert _learned()["reset_password"] == "account/reset-password.md"


def test_no_active_classifier_learns_nothing(db):
    # given / when
    learned_now = intent_links_ensure(classifier_version_id=None, knowledge_version="1-1-0")
    # then
    assert learned_now is False
    assert LinkLearning.objects.count() == 0


def test_admin_links_win_over_learned_links_for_their_intent(tiny_kb):
    # given: reset_password has an admin link (tiny_kb); both intents get a learned link
    learned_article = tiny_kb["shipping/tracking.md"]
    for intent in ("reset_password", "track_order"):
        IntentArticleLink.objects.filter(intent_name=intent, source=LinkSource.ADMIN).delete()
    IntentArticleLink.objects.create(
        intent_name="reset_password",
        article=tiny_kb["account/reset-password.md"],
        source=LinkSource.ADMIN,
    )
    for intent in ("reset_password", "track_order"):
        IntentArticleLink.objects.create(
            intent_name=intent,
            article=learned_article,
            source=LinkSource.LEARNED_FROM_EXAMPLES,
            weight=0.75,
        )
    # when
    admin_intent = intent_article_weights(intent="reset_password")
    learned_intent = intent_article_weights(intent="track_order")
    # then
    assert admin_intent == {tiny_kb["account/reset-password.md"].id: 1.0}
    assert learned_intent == {learned_article.id: 0.75}


@pytest.mark.slow
def test_the_first_message_after_training_is_drafted_with_learned_links(examples_stored):
    # given: a fresh instance: articles, a trained classifier, no link of any kind
    _, message = customer_ticket("I forgot my password and the reset email never arrives")
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    assert _learned()["reset_password"] == "account/reset-password.md"
    assert "learn_links" in draft.stage_timings
    assert draft.citations[0]["external_id"] == "account/reset-password.md"
    assert draft.confidence_features["intent_article_match"] >= 0.5
    assert draft.confidence_features["article_probability"] > 0


REVIEW_QUESTION = (
    "My parcel arrived two weeks late and that is the second time. I think I deserve "
    "some kind of compensation or voucher for this."
)


def test_drafts_agents_send_as_they_are_strengthen_their_intent_link(copilot_ready):
    # given: three reviewed drafts; the agent sends two as they are and edits the third
    agent = User.objects.create_user(username="agent-1", password="x", role=Role.AGENT)
    drafts = [pipeline_run(message_id=customer_ticket(REVIEW_QUESTION)[1].id) for _ in range(3)]
    assert {d.status for d in drafts} == {"pending"}
    # when
    draft_send(draft=drafts[0], actor=agent)
    draft_send(draft=drafts[1], actor=agent)
    draft_send(draft=drafts[2], actor=agent, body="Here is a voucher, sorry.")
    # then
    link = IntentArticleLink.objects.get(source=LinkSource.ACCEPTED_DRAFT)
    assert (link.intent_name, link.article.external_id) == (
        drafts[0].intent,
        drafts[0].citations[0]["external_id"],
    )
    assert link.weight == pytest.approx(0.5)


@pytest.mark.slow
def test_the_command_learns_the_links_ahead_and_the_task_then_finds_them(examples_stored):
    # given
    out = io.StringIO()
    # when
    call_command("copilot_learn_links", stdout=out)
    learning_id = intent_links_learn_task()
    # then: learned once; the task (run again) returns the same record
    learning = LinkLearning.objects.get()
    assert learning_id == learning.id
    assert f"{learning.links} links for {len(INTENTS)} intents" in out.getvalue()
    assert _learned()["reset_password"] == "account/reset-password.md"


def test_the_beat_refresh_learns_ahead_of_the_first_message_then_does_nothing(
    examples_stored,
):
    # when: beat runs the refresh twice after a classifier was trained
    first, second = intent_links_refresh_task(), intent_links_refresh_task()
    # then: learned once, for the active version and the current knowledge base
    assert (first, second) == (True, False)
    learning = LinkLearning.objects.get()
    assert learning.classifier_version_id == examples_stored.id
    assert learning.knowledge_version == knowledge_version()
    assert _learned()["reset_password"] == "account/reset-password.md"


def test_the_command_says_when_there_is_nothing_to_learn_from(db):
    # given
    out = io.StringIO()
    # when
    call_command("copilot_learn_links", stdout=out)
    # then
    assert out.getvalue().strip() == "no active classifier: nothing to learn from"
    assert LinkLearning.objects.count() == 0
