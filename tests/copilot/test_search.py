"""Intent-aware knowledge search (the API's and the inbox's): the query's likely intents
lift their linked articles, a linked article the search missed is added, the reading is
returned; without a classifier, or with intents=false, it is the plain search."""

from __future__ import annotations

import pytest

from apps.copilot.models import IntentArticleLink, LinkSource
from apps.knowledge.models import Article, ArticleStatus
from apps.knowledge.selectors import chunk_search
from apps.triage.models import ClassifierVersion

pytestmark = pytest.mark.slow
QUESTION = "I forgot my password and the reset email never came"


def _search(client, **params):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/knowledge/search", {"q": QUESTION, "k": 3, **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_search_reads_the_query_and_lifts_the_intents_articles(
    copilot_ready, api_key_client, settings
):
    client = api_key_client(scopes=("read",))
    plain = _search(client, intents="false")
    assert plain["reading"]["used"] is False
    assert [r["external_id"] for r in plain["results"]] == [
        h.external_id for h in chunk_search(query=QUESTION, k=3)
    ]
    read = _search(client)
    assert read["reading"]["used"] is True and read["reading"]["intent"] == "reset_password"
    assert read["reading"]["language"] == "en" and read["reading"]["alternatives"]
    reset = copilot_ready["account/reset-password.md"]
    assert read["results"][0]["external_id"] == "account/reset-password.md"
    assert reset.pk in read["reading"]["lifted"]
    # given: the intent's link points (wrongly, strongly) at an article the search ranks low
    tracking = copilot_ready["shipping/tracking.md"]
    IntentArticleLink.objects.filter(intent_name="reset_password").delete()
    IntentArticleLink.objects.create(
        intent_name="reset_password", article=tracking, source=LinkSource.ADMIN, weight=1.0
    )
    settings.KNOWLEDGE_SEARCH_OVERFETCH = 1  # the search itself fetches only its best
    settings.KNOWLEDGE_SEARCH_INTENT_BOOST = 1.0
    lifted = _search(client)
    # then: the linked article is added with its best passage, and lifted first
    assert lifted["results"][0]["external_id"] == "shipping/tracking.md"
    assert lifted["results"][0]["text"] and tracking.pk in lifted["reading"]["lifted"]


def test_without_a_classifier_it_is_the_plain_search_and_other_languages_are_read(
    copilot_ready, api_key_client
):
    client = api_key_client(scopes=("read",))
    ClassifierVersion.objects.update(is_active=False)
    answer = _search(client)
    assert answer["reading"]["used"] is False and answer["reading"]["intent"] is None
    assert [r["external_id"] for r in answer["results"]] == [
        h.external_id for h in chunk_search(query=QUESTION, k=3)
    ]
    french = client.get(
        "/api/v1/knowledge/search", {"q": "J'ai oublié mon mot de passe, aidez-moi s'il vous plaît"}
    )
    assert french.status_code == 200 and french.json()["reading"]["language"] == "fr"


def test_a_link_to_an_unpublished_article_is_ignored(copilot_ready, api_key_client, settings):
    client = api_key_client(scopes=("read",))
    tracking = copilot_ready["shipping/tracking.md"]
    IntentArticleLink.objects.create(
        intent_name="reset_password", article=tracking, source=LinkSource.ADMIN, weight=1.0
    )
    Article.objects.filter(pk=tracking.pk).update(status=ArticleStatus.DRAFT)
    settings.KNOWLEDGE_SEARCH_OVERFETCH = 1
    settings.KNOWLEDGE_SEARCH_INTENT_BOOST = 1.0
    answer = _search(client)
    assert answer["reading"]["used"] is True
    assert "shipping/tracking.md" not in [r["external_id"] for r in answer["results"]]
    assert answer["results"][0]["external_id"] == "account/reset-password.md"
