"""The reply cache: exact and close-paraphrase hits, invalidated by KB and prompt changes."""

from __future__ import annotations

import pytest

from apps.copilot.models import Draft, ReplyCacheEntry
from apps.copilot.services import pipeline_run, prompt_template_publish
from apps.knowledge.models import Source
from apps.knowledge.services import article_delete
from apps.llm.models import LLMCall
from tests.copilot.conftest import customer_ticket

pytestmark = pytest.mark.django_db

QUESTION = "I forgot my password and the reset email never arrives"


def _draft(text: str) -> Draft:
    _, message = customer_ticket(text)
    return pipeline_run(message_id=message.id)


def test_the_same_question_again_is_served_from_the_cache(copilot_ready):
    # given
    first = _draft(QUESTION)
    # when: the same question, differently spaced and punctuated
    second = _draft("  i forgot my password, and the reset email never arrives!! ")
    # then
    assert (first.cache_hit, second.cache_hit) == ("", "exact")
    assert second.body == first.body
    assert [c["external_id"] for c in second.citations] == ["account/reset-password.md"]
    assert [c["passage"] for c in second.citations] == [c["passage"] for c in first.citations]
    assert second.decision == first.decision
    hit = LLMCall.objects.get(id=second.llm_call_ids[0])
    assert (hit.cache_hit, hit.cost_usd, hit.model) == (True, 0, "local/extractive")
    assert ReplyCacheEntry.objects.get().hits == 1


def test_a_close_paraphrase_of_the_same_intent_is_a_semantic_hit(copilot_ready):
    # given
    _draft(QUESTION)
    # when
    second = _draft("I forgot my password and the reset e-mail never arrives")
    # then
    assert second.cache_hit == "semantic"


def test_a_different_question_is_not_a_hit(copilot_ready):
    # given
    _draft(QUESTION)
    # when
    other = _draft("How long does a refund take after you receive my return?")
    # then
    assert other.cache_hit == ""


def test_a_knowledge_base_change_invalidates_the_cache(copilot_ready):
    # given
    _draft(QUESTION)
    # when: an article is removed
    article_delete(source=Source.objects.get(name="demo-test"), external_id="shipping/tracking.md")
    again = _draft(QUESTION)
    # then
    assert again.cache_hit == ""
    assert ReplyCacheEntry.objects.count() == 2


def test_a_new_prompt_version_invalidates_the_cache(copilot_ready):
    # given
    first = _draft(QUESTION)
    # when
    prompt = prompt_template_publish(body="Answer briefly from the passages only.")
    again = _draft(QUESTION)
    # then
    assert again.cache_hit == ""
    assert (first.prompt.version, again.prompt_id) == (1, prompt.id)


def test_a_reply_written_by_another_model_is_not_served(copilot_ready, fake_openai, settings):
    import json

    from apps.llm.deployments import LOCAL_EXTRACTIVE, Deployment
    from tests.llm.fake_openai import Reply

    # given: a cached reply written by the offline drafter
    provider = settings.LLM_DEPLOYMENTS
    settings.LLM_DEPLOYMENTS = {alias: (Deployment(LOCAL_EXTRACTIVE),) for alias in provider}
    first = _draft(QUESTION)
    assert (first.model, ReplyCacheEntry.objects.count()) == ("local/extractive", 1)
    # when: the aliases now go to a provider's model, and the same question comes again
    settings.LLM_DEPLOYMENTS = provider
    answer = {
        "reply": "You can set a new password yourself from the sign-in page.",
        "citations": ["P1"],
        "answerable": True,
    }
    fake_openai.reset(default=Reply.ok(json.dumps(answer)))
    again = _draft(QUESTION)
    # then: the provider's model wrote the reply; the offline drafter's was not served
    assert again.cache_hit == ""
    assert again.model == "openai/gpt-4o-mini"
    assert fake_openai.hits == 1
