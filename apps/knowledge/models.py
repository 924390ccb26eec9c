"""Sources, articles, their embedded chunks, the embedding cache and import runs."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField

from apps.core.models import TimeStampedModel

EMBEDDING_DIMENSIONS = 384
# English stemming: customers write "refunds", articles say "refund". Stop words are dropped,
# which suits OR-style matching of whole questions (see selectors.chunk_search).
FULLTEXT_CONFIG = "english"


class SourceKind(models.TextChoices):
    FOLDER = "folder", "Folder"
    UPLOAD = "upload", "Upload"
    API = "api", "API client"
    SITEMAP = "sitemap", "Website sitemap"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class ImportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Source(TimeStampedModel):
    """Where articles come from. An article's `external_id` is unique within its source."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=SourceKind.choices, default=SourceKind.FOLDER)
    # For a sitemap source: the sitemap URL crawled by the periodic task.
    url = models.URLField(max_length=1000, blank=True)
    is_active = models.BooleanField(default=True)
    last_crawled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="sitemap") | ~Q(url=""), name="knowledge_sitemap_has_url"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Article(TimeStampedModel):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="articles")
    external_id = models.CharField(max_length=500)
    title = models.CharField(max_length=500)
    body = models.TextField()
    url = models.URLField(max_length=1000, blank=True)
    language = models.CharField(max_length=16, default="en")
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=ArticleStatus.choices, default=ArticleStatus.PUBLISHED
    )
    # sha256 of everything that shapes the chunks (title, body, metadata): same hash, no work.
    content_hash = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="knowledge_article_unique_external_id"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="knowledge_version_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "visibility", "language"]),
            GinIndex(fields=["tags"], name="knowledge_article_tags_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.source.name}:{self.external_id}"


class Chunk(models.Model):
    """A passage of an article, embedded with `embedding_model` and indexed for full text."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    heading_path = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    # Title and heading path: embedded with the text and weighted higher in full-text search.
    context = models.TextField(blank=True)
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=200)
    search_vector = models.GeneratedField(
        expression=SearchVector("context", weight="A", config=FULLTEXT_CONFIG)
        + SearchVector("text", weight="B", config=FULLTEXT_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["article", "position"], name="knowledge_chunk_unique_position"
            ),
        ]
        indexes = [
            HnswIndex(
                name="knowledge_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            # No b-tree on embedding_model: it would tempt the planner away from HNSW.
            GinIndex(fields=["search_vector"], name="knowledge_chunk_fulltext_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id}#{self.position}"


class EmbeddingCache(models.Model):
    """An embedding by sha256 of the exact embedded text and the model: never embed twice."""

    text_hash = models.CharField(max_length=64)
    model_name = models.CharField(max_length=200)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["text_hash", "model_name"], name="knowledge_embedding_cache_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_name}:{self.text_hash[:12]}"


class ImportRun(TimeStampedModel):
    """One import (command, Celery task or admin upload): progress and outcome, for the admin."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="import_runs")
    paths = models.JSONField(default=list)
    prune = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ImportState.choices, default=ImportState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    embedded = models.PositiveIntegerField(default=0)
    # [{"path": ..., "reason": ...}] for each file that could not be imported.
    errors = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.state})"
