import pytest

from apps.core.exceptions import ValidationError
from apps.knowledge.selectors import FusionSettings, chunk_search

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("i forgot my pasword and cant log in", "account/reset-password.md"),
        ("sent my return 2 weeks ago still no money back", "returns/refund-timing.md"),
        ("tracking says delivered but nothing at my door", "shipping/delivered-not-received.md"),
        ("the plates arrived smashed", "shipping/damaged-item.md"),
        ("can i split the payment into installments", "billing/klarna.md"),
        ("will i have to pay customs fees in switzerland", "shipping/international.md"),
    ],
)
def test_customer_questions_find_the_right_demo_article_first(demo_kb, question, expected):
    # when
    hits = chunk_search(query=question, k=5, source=demo_kb)
    # then
    assert hits[0].external_id == expected


def test_hits_are_one_per_article_with_passage_and_component_ranks(demo_kb):
    # when
    hits = chunk_search(query="how long do refunds take to paypal", k=5, source=demo_kb)
    # then
    assert len(hits) == 5
    assert len({hit.article_id for hit in hits}) == 5
    top = hits[0]
    assert top.external_id == "returns/refund-timing.md"
    assert top.title == "When will I get my refund?"
    assert top.url == "https://help.fernhill.example/returns/refund-timing"
    assert top.source == demo_kb
    assert top.vector_rank == 1 and top.fulltext_rank is not None
    assert 0.3 < top.similarity <= 1.0
    assert "PayPal" in top.text
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_each_mode_returns_results(demo_kb):
    # when
    by_mode = {
        mode: chunk_search(query="gift card balance expiry", k=3, mode=mode, source=demo_kb)
        for mode in ("vector", "fulltext", "hybrid")
    }
    # then
    assert {mode: hits[0].external_id for mode, hits in by_mode.items()} == {
        "vector": "billing/gift-cards.md",
        "fulltext": "billing/gift-cards.md",
        "hybrid": "billing/gift-cards.md",
    }
    assert by_mode["fulltext"][0].similarity is None
    assert by_mode["vector"][0].fulltext_rank is None


def test_internal_articles_are_excluded_by_the_visibility_filter(demo_kb):
    # given
    question = "what goodwill gesture can I offer for a late parcel"
    # when
    public = chunk_search(query=question, k=10, visibility=["public"], source=demo_kb)
    everything = chunk_search(query=question, k=10, source=demo_kb)
    # then
    assert "internal/goodwill-gestures.md" not in [hit.external_id for hit in public]
    assert everything[0].external_id == "internal/goodwill-gestures.md"


def test_a_selective_filter_keeps_recall_beyond_the_index_candidates(demo_kb):
    # given: so few index candidates that none of them passes the tag filter
    narrow = FusionSettings(candidates=2, filter_overfetch=1)
    # when
    hits = chunk_search(
        query="how do i get my money back", k=3, tags=["care"], fusion=narrow, source=demo_kb
    )
    # then: the exact scan of the filtered set still finds the one tagged article
    assert [hit.external_id for hit in hits] == ["products/care-instructions.md"]


def test_language_and_source_filters_are_exact(demo_kb):
    # when
    german = chunk_search(query="refund", k=5, language="de", source=demo_kb)
    elsewhere = chunk_search(query="refund", k=5, source="no-such-source")
    # then
    assert german == []
    assert elsewhere == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": ""}, "the query is empty"),
        ({"query": "   \n\t "}, "the query is empty"),
        ({"query": "a" * 10_000}, "the query is longer than 2000 characters"),
        ({"query": "refund", "k": 0}, "k must be between 1 and 50"),
        ({"query": "refund", "k": 51}, "k must be between 1 and 50"),
        ({"query": "refund", "mode": "magic"}, "mode must be one of hybrid, vector, fulltext"),
        ({"query": "refund", "visibility": ["secret"]}, "unknown visibility 'secret'"),
    ],
)
def test_invalid_searches_raise_a_clear_validation_error(arguments, message):
    # when / then
    with pytest.raises(ValidationError) as caught:
        chunk_search(**arguments)
    assert caught.value.message == message


def test_a_punctuation_only_query_returns_nothing(demo_kb):
    # when / then
    assert chunk_search(query="?!... ,;:", k=5) == []


@pytest.mark.parametrize(
    "bounded",
    [FusionSettings(fulltext_max_ranked=0), FusionSettings(fulltext_full_rank_max_chunks=-1)],
    ids=["many-matches", "large-table"],
)
def test_hybrid_search_with_a_bounded_fulltext_pool_still_ranks_the_right_article(demo_kb, bounded):
    # given: too many matches, or too many chunks, to rank every full-text match
    # when
    hits = chunk_search(
        query="how long do refunds take to paypal", k=5, fusion=bounded, source=demo_kb
    )
    # then: full text still ranks the vector candidates
    assert hits[0].external_id == "returns/refund-timing.md"
    assert hits[0].fulltext_rank is not None


def test_a_query_of_stop_words_only_still_searches_by_meaning(demo_kb):
    # when
    hits = chunk_search(query="how do I do it", k=3, source=demo_kb)
    # then: no full-text terms, vector results only
    assert len(hits) == 3
    assert all(hit.fulltext_rank is None for hit in hits)
