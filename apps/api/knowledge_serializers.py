"""Serializers of the knowledge endpoints: shape and limits only, no logic."""

from rest_framework import serializers

from apps.knowledge.models import ArticleStatus, Visibility
from apps.knowledge.selectors import MAX_QUERY_CHARACTERS, MAX_RESULTS, SEARCH_MODES
from apps.knowledge.services import BODY_FORMATS

MAX_ARTICLES_PER_REQUEST = 100
MAX_BODY_CHARACTERS = 1_000_000


# Fields named `source`: DRF's serializer metaclass pops declared fields off the class, so
# they do not clash with `Field.source` at run time; the stubs see a clash (ignored below).


class ArticleWriteSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=500)
    title = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    body = serializers.CharField(max_length=MAX_BODY_CHARACTERS, trim_whitespace=False)
    format = serializers.ChoiceField(choices=sorted(BODY_FORMATS), default="markdown")
    url = serializers.URLField(max_length=1000, required=False, allow_blank=True, default="")
    language = serializers.CharField(max_length=16, default="en")
    visibility = serializers.ChoiceField(choices=Visibility.values, default=Visibility.PUBLIC)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=50, default=list
    )
    status = serializers.ChoiceField(choices=ArticleStatus.values, default=ArticleStatus.PUBLISHED)


class ArticleBulkWriteSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=100, default="api")  # type: ignore[assignment]  # see module note
    # DRF (3.14+) passes max_length/min_length of a many=True serializer to its list
    # serializer; the stubs do not list them.
    articles = ArticleWriteSerializer(  # type: ignore[call-arg]
        many=True, max_length=MAX_ARTICLES_PER_REQUEST, min_length=1
    )


class ArticleBulkDeleteSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=100, default="api")  # type: ignore[assignment]  # see module note
    external_ids = serializers.ListField(
        child=serializers.CharField(max_length=500), min_length=1, max_length=1000
    )


class ArticleOutcomeSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    result = serializers.ChoiceField(choices=["added", "updated", "unchanged", "failed"])
    reason = serializers.CharField()
    article_id = serializers.IntegerField(allow_null=True)


class SearchQuerySerializer(serializers.Serializer):
    # Length is checked by chunk_search too; here it is a clear 400 before any work.
    q = serializers.CharField(max_length=MAX_QUERY_CHARACTERS, trim_whitespace=True)
    k = serializers.IntegerField(min_value=1, max_value=MAX_RESULTS, default=5)
    mode = serializers.ChoiceField(choices=SEARCH_MODES, default="hybrid")
    visibility = serializers.ChoiceField(choices=Visibility.values, required=False)
    language = serializers.CharField(max_length=16, required=False)
    tags = serializers.CharField(max_length=1000, required=False, help_text="comma-separated")
    source = serializers.CharField(max_length=100, required=False)  # type: ignore[assignment]  # see module note
    intents = serializers.BooleanField(
        default=True,
        help_text="Read the query's likely intents and lift the articles linked to them "
        "(false: the plain search). Needs an active classifier; the reading is returned.",
    )


class SearchHitSerializer(serializers.Serializer):
    article_id = serializers.IntegerField()
    external_id = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # see module note
    title = serializers.CharField()
    url = serializers.CharField()
    heading_path = serializers.CharField()
    text = serializers.CharField()
    chunk_id = serializers.IntegerField()
    score = serializers.FloatField()
    similarity = serializers.FloatField(allow_null=True)
    vector_rank = serializers.IntegerField(allow_null=True)
    fulltext_rank = serializers.IntegerField(allow_null=True)
    fulltext_score = serializers.FloatField(allow_null=True)


class ArticlePushResponseSerializer(serializers.Serializer):
    results = ArticleOutcomeSerializer(many=True)


class ArticlesDeletedSerializer(serializers.Serializer):
    deleted = serializers.IntegerField()


class SearchReadingSerializer(serializers.Serializer):
    language = serializers.CharField(allow_null=True, help_text="the query's detected language")
    intent = serializers.CharField(allow_null=True)
    probability = serializers.FloatField(allow_null=True)
    alternatives = serializers.ListField(child=serializers.DictField())
    lifted = serializers.ListField(
        child=serializers.IntegerField(), help_text="article ids the intents' links lifted"
    )
    used = serializers.BooleanField(help_text="whether the intents took part in the ranking")


class SearchResponseSerializer(serializers.Serializer):
    results = SearchHitSerializer(many=True)
    reading = SearchReadingSerializer()
