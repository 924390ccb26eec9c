import pytest

from apps.knowledge.models import Article, Chunk

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

REFUNDS = {
    "external_id": "billing/refunds",
    "title": "Refunds",
    "body": "We refund returned items within 5 working days.\n\n## PayPal\n\nPayPal takes one day.",
    "url": "https://help.example/refunds",
    "tags": ["billing"],
}
SHIPPING = {
    "external_id": "shipping/times",
    "title": "Delivery times",
    "body": "<p>Parcels to Germany take 3 to 6 working days.</p>",
    "format": "html",
}


def test_pushing_an_article_stores_it_and_pushing_it_again_changes_nothing(api_key_client):
    # given
    client = api_key_client(scopes=("read", "write"))
    # when
    first = client.post("/api/v1/articles", REFUNDS, format="json")
    chunk_ids = sorted(Chunk.objects.values_list("id", flat=True))
    second = client.post("/api/v1/articles", REFUNDS, format="json")
    # then
    assert first.status_code == 201, first.json()
    article = Article.objects.get(external_id="billing/refunds")
    assert first.json() == {
        "results": [
            {
                "external_id": "billing/refunds",
                "result": "added",
                "reason": "",
                "article_id": article.pk,
            }
        ]
    }
    assert (article.source.name, article.source.kind, article.tags) == ("api", "api", ["billing"])
    assert second.status_code == 200
    assert second.json()["results"][0]["result"] == "unchanged"
    assert sorted(Chunk.objects.values_list("id", flat=True)) == chunk_ids


def test_bulk_push_reports_each_article(api_key_client):
    # given
    client = api_key_client()
    # when
    response = client.post(
        "/api/v1/articles", {"source": "cms", "articles": [REFUNDS, SHIPPING]}, format="json"
    )
    # then
    assert response.status_code == 201
    assert [(r["external_id"], r["result"]) for r in response.json()["results"]] == [
        ("billing/refunds", "added"),
        ("shipping/times", "added"),
    ]
    assert Article.objects.filter(source__name="cms").count() == 2


def test_put_replaces_the_article_at_its_external_id(api_key_client):
    # given
    client = api_key_client()
    client.post("/api/v1/articles", REFUNDS, format="json")
    # when
    response = client.put(
        "/api/v1/articles/billing/refunds",
        {**REFUNDS, "body": "Refunds now take 3 working days."},
        format="json",
    )
    # then
    assert response.status_code == 200, response.json()
    assert response.json()["result"] == "updated"
    article = Article.objects.get(external_id="billing/refunds")
    assert (article.version, article.body) == (2, "Refunds now take 3 working days.")


def test_delete_single_and_bulk(api_key_client):
    # given
    client = api_key_client()
    client.post("/api/v1/articles", {"articles": [REFUNDS, SHIPPING]}, format="json")
    # when
    single = client.delete("/api/v1/articles/billing/refunds")
    again = client.delete("/api/v1/articles/billing/refunds")
    bulk = client.delete("/api/v1/articles", {"external_ids": ["shipping/times"]}, format="json")
    # then
    assert (single.status_code, again.status_code, bulk.status_code) == (204, 404, 200)
    assert bulk.json() == {"deleted": 1}
    assert Article.objects.count() == Chunk.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**REFUNDS, "visibility": "secret"}, "visibility"),
        ({**REFUNDS, "body": "   "}, "body"),
        ({**REFUNDS, "format": "docx"}, "format"),
        ({"articles": [REFUNDS] * 101}, "articles"),
        ({"articles": [REFUNDS, REFUNDS]}, "articles"),
        ({**REFUNDS, "body": "<div><script>x()</script></div>", "format": "html"}, "body"),
    ],
)
def test_invalid_articles_are_refused_with_400_and_nothing_stored(api_key_client, payload, field):
    # given
    client = api_key_client()
    # when
    response = client.post("/api/v1/articles", payload, format="json")
    # then
    assert response.status_code == 400, response.json()
    assert [name.split(".")[0] for name in response.json()["error"]["fields"]] == [field]
    assert Article.objects.count() == 0


def test_writing_needs_the_write_scope_and_a_key(api_client, api_key_client):
    # given
    reader = api_key_client(scopes=("read",))
    # when
    denied = reader.post("/api/v1/articles", REFUNDS, format="json")
    anonymous = api_client.post("/api/v1/articles", REFUNDS, format="json")
    anonymous_search = api_client.get("/api/v1/knowledge/search", {"q": "refund"})
    # then
    assert (denied.status_code, anonymous.status_code, anonymous_search.status_code) == (
        403,
        401,
        401,
    )
    assert Article.objects.count() == 0


def test_search_returns_the_best_passage_per_article(api_key_client):
    # given
    writer = api_key_client()
    writer.post("/api/v1/articles", {"articles": [REFUNDS, SHIPPING]}, format="json")
    reader = api_key_client(scopes=("read",))
    # when
    response = reader.get(
        "/api/v1/knowledge/search", {"q": "how long until i get my money back", "k": 2}
    )
    # then
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["external_id"] for r in results] == ["billing/refunds", "shipping/times"]
    assert results[0]["url"] == "https://help.example/refunds"
    assert set(results[0]) >= {
        "title",
        "heading_path",
        "text",
        "score",
        "similarity",
        "vector_rank",
    }


@pytest.mark.parametrize(
    ("params", "status_code", "field"),
    [
        ({"q": ""}, 400, "q"),
        ({"q": "x" * 10_000}, 400, "q"),
        ({"q": "refund", "k": 0}, 400, "k"),
        ({"q": "refund", "k": "many"}, 400, "k"),
        ({"q": "refund", "mode": "magic"}, 400, "mode"),
        ({}, 400, "q"),
    ],
)
def test_bad_search_queries_get_a_clear_400(api_key_client, params, status_code, field):
    # when
    response = api_key_client(scopes=("read",)).get("/api/v1/knowledge/search", params)
    # then
    assert response.status_code == status_code
    assert field in response.json()["error"]["fields"]


def test_a_punctuation_only_query_gives_an_empty_result(api_key_client):
    # when
    response = api_key_client(scopes=("read",)).get("/api/v1/knowledge/search", {"q": "?!?!"})
    # then
    assert response.status_code == 200 and response.json()["results"] == []
    assert response.json()["reading"]["used"] is False


def test_a_push_over_the_size_cap_is_refused_naming_the_limit_and_stores_nothing(
    api_key_client, settings
):
    # given
    settings.KNOWLEDGE_API_MAX_REQUEST_BYTES = 64 * 1024
    client = api_key_client(scopes=("read", "write"))
    big = {**REFUNDS, "body": "Refunds take five days. " * 4000}
    # when
    response = client.post("/api/v1/articles", big, format="json")
    # then
    assert response.status_code == 413
    assert "the limit is 65536 bytes" in response.json()["error"]["message"]
    assert not Article.objects.exists()


def test_a_push_that_is_not_utf8_json_is_a_clear_400(api_key_client):
    # given
    client = api_key_client(scopes=("read", "write"))
    # when
    response = client.generic(
        "POST", "/api/v1/articles", b'{"external_id": "\xff"}', content_type="application/json"
    )
    # then
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["error"]["message"]
    assert not Article.objects.exists()
