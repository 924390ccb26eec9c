"""Writes to the knowledge base: embeddings through the cache, atomic article replacement,
unpublishing and re-embedding. Folder imports and sitemap crawls build on these.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.db import DatabaseError, IntegrityError, transaction

from apps.core.exceptions import NotFoundError, ValidationError
from apps.knowledge.chunking import ChunkDraft, document_chunk, embedded_text
from apps.knowledge.models import (
    Article,
    ArticleStatus,
    Chunk,
    EmbeddingCache,
    Source,
    SourceKind,
    Visibility,
)
from apps.knowledge.parsing import ParsedDocument
from apps.llm import embeddings

logger = logging.getLogger(__name__)

# Bump when chunking changes the chunks of unchanged files, so the next import redoes them.
CHUNKER_VERSION = "1"


@dataclass
class EmbeddingBatch:
    vectors: list[list[float]]
    embedded: int  # texts sent to the model
    cached: int  # texts served by EmbeddingCache


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embeddings_fetch(*, texts: Sequence[str]) -> EmbeddingBatch:
    """Embeddings of `texts` in order; each distinct text is embedded once per model, ever.

    Side effect: new embeddings are stored in EmbeddingCache (concurrent writers are harmless).
    """
    model = embeddings.model_name()
    hashes = [text_hash(text) for text in texts]
    known: dict[str, list[float]] = {}
    unique_hashes = list(dict.fromkeys(hashes))
    for start in range(0, len(unique_hashes), 5000):
        rows = EmbeddingCache.objects.filter(
            model_name=model, text_hash__in=unique_hashes[start : start + 5000]
        ).values_list("text_hash", "embedding")
        known.update({digest: vector for digest, vector in rows})
    missing = {
        digest: text for digest, text in zip(hashes, texts, strict=True) if digest not in known
    }
    if missing:
        vectors = embeddings.embed(list(missing.values()))
        fresh = dict(zip(missing.keys(), vectors, strict=True))
        EmbeddingCache.objects.bulk_create(
            [
                EmbeddingCache(text_hash=digest, model_name=model, embedding=vector)
                for digest, vector in fresh.items()
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        known.update(fresh)
    return EmbeddingBatch(
        vectors=[known[digest] for digest in hashes],
        embedded=len(missing),
        cached=len(texts) - len(missing),
    )


def source_get_or_create(*, name: str, kind: str = SourceKind.FOLDER, url: str = "") -> Source:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError("a source name needs 1 to 100 characters", field="source")
    if kind not in SourceKind.values:
        raise ValidationError(f"unknown source kind {kind!r}", field="kind")
    source, _ = Source.objects.get_or_create(name=name, defaults={"kind": kind, "url": url})
    return source


@dataclass
class ArticleInput:
    """One article as a source delivers it, parsed."""

    external_id: str
    document: ParsedDocument
    url: str = ""
    language: str = "en"
    visibility: str = Visibility.PUBLIC
    tags: list[str] = field(default_factory=list)
    status: str = ArticleStatus.PUBLISHED

    @classmethod
    def from_document(cls, *, external_id: str, document: ParsedDocument) -> ArticleInput:
        """Metadata from front matter or page tags, with defaults; bad values are rejected."""
        meta = document.metadata
        raw_tags = meta.get("tags") or []
        tags: Iterable[object]
        if isinstance(raw_tags, str):
            tags = [tag.strip() for tag in raw_tags.split(",")]
        elif isinstance(raw_tags, Iterable):
            tags = raw_tags
        else:
            tags = [raw_tags]  # a lone scalar is one tag (the parsers give str or list)
        return cls(
            external_id=external_id,
            document=document,
            url=str(meta.get("url") or ""),
            language=str(meta.get("language") or "en").lower(),
            visibility=str(meta.get("visibility") or Visibility.PUBLIC).lower(),
            tags=[str(tag) for tag in tags if str(tag)],
            status=str(meta.get("status") or ArticleStatus.PUBLISHED).lower(),
        )

    def validate(self) -> None:
        if not self.external_id or len(self.external_id) > 500:
            raise ValidationError("external_id needs 1 to 500 characters", field="external_id")
        if self.visibility not in Visibility.values:
            raise ValidationError(
                f"visibility must be one of {', '.join(Visibility.values)}", field="visibility"
            )
        if self.status not in ArticleStatus.values:
            raise ValidationError(
                f"status must be one of {', '.join(ArticleStatus.values)}", field="status"
            )
        if len(self.language) > 16 or not self.language:
            raise ValidationError("language must be a short code such as 'en'", field="language")
        if len(self.url) > 1000:
            raise ValidationError("url is longer than 1000 characters", field="url")
        if len(self.tags) > 50 or any(len(tag) > 100 for tag in self.tags):
            raise ValidationError("at most 50 tags of 100 characters each", field="tags")

    def content_hash(self) -> str:
        payload = {
            "chunker": CHUNKER_VERSION,
            "title": self.document.title,
            "body": self.document.body,
            "url": self.url,
            "language": self.language,
            "visibility": self.visibility,
            "tags": sorted(self.tags),
        }
        return text_hash(json.dumps(payload, sort_keys=True, ensure_ascii=False))


@dataclass
class UpsertOutcome:
    external_id: str
    result: str  # "added", "updated", "unchanged" or "failed"
    reason: str = ""
    article_id: int | None = None


@dataclass
class UpsertReport:
    outcomes: list[UpsertOutcome] = field(default_factory=list)
    embedded: int = 0
    cached: int = 0
    chunks: int = 0


def articles_upsert(*, source: Source, articles: Sequence[ArticleInput]) -> UpsertReport:
    """Create or replace articles of `source` by external_id. Idempotent.

    Unchanged content (same hash) is left alone: not re-chunked, not re-embedded. A changed
    article gets its new chunks embedded first (no lock held during the model call), then
    replaces its old ones in one transaction: a failure leaves the previous version whole.
    """
    report = UpsertReport()
    existing = {
        row["external_id"]: row
        for row in Article.objects.filter(
            source=source, external_id__in=[item.external_id for item in articles]
        ).values("id", "external_id", "content_hash", "status")
    }
    pending: list[tuple[ArticleInput, str, list[ChunkDraft]]] = []
    for item in articles:
        try:
            item.validate()
        except ValidationError as error:
            report.outcomes.append(UpsertOutcome(item.external_id, "failed", error.message))
            continue
        digest = item.content_hash()
        current = existing.get(item.external_id)
        if current and current["content_hash"] == digest:
            if current["status"] != item.status:
                Article.objects.filter(pk=current["id"]).update(status=item.status)
                report.outcomes.append(
                    UpsertOutcome(item.external_id, "updated", "", current["id"])
                )
            else:
                report.outcomes.append(
                    UpsertOutcome(item.external_id, "unchanged", "", current["id"])
                )
            continue
        drafts = document_chunk(
            document=item.document,
            token_count=embeddings.token_count,
            max_tokens=embeddings.max_tokens(),
        )
        pending.append((item, digest, drafts))
    if not pending:
        return report
    texts = [draft.embedded_text for _, _, drafts in pending for draft in drafts]
    batch = embeddings_fetch(texts=texts)
    report.embedded += batch.embedded
    report.cached += batch.cached
    vectors = iter(batch.vectors)
    model = embeddings.model_name()
    for item, digest, drafts in pending:
        chunk_vectors = [next(vectors) for _ in drafts]
        try:
            article, created = article_replace(
                source=source,
                item=item,
                content_hash=digest,
                drafts=drafts,
                vectors=chunk_vectors,
                embedding_model=model,
            )
        except (DatabaseError, ValueError) as error:
            logger.warning("article %s not stored: %s", item.external_id, error)
            report.outcomes.append(
                UpsertOutcome(item.external_id, "failed", f"could not store: {error}".strip())
            )
            continue
        report.chunks += len(drafts)
        report.outcomes.append(
            UpsertOutcome(item.external_id, "added" if created else "updated", "", article.pk)
        )
    return report


def article_replace(
    *,
    source: Source,
    item: ArticleInput,
    content_hash: str,
    drafts: Sequence[ChunkDraft],
    vectors: Sequence[Sequence[float]],
    embedding_model: str,
) -> tuple[Article, bool]:
    """Write one article and all its chunks atomically; returns (article, created)."""
    if len(drafts) != len(vectors):
        raise ValueError("one vector per chunk is required")
    fields = {
        "title": item.document.title,
        "body": item.document.body,
        "url": item.url,
        "language": item.language,
        "visibility": item.visibility,
        "tags": item.tags,
        "status": item.status,
        "content_hash": content_hash,
    }
    with transaction.atomic():
        article = (
            Article.objects.select_for_update()
            .filter(source=source, external_id=item.external_id)
            .first()
        )
        created = article is None
        if article is None:
            try:
                with transaction.atomic():
                    article = Article.objects.create(
                        source=source, external_id=item.external_id, **fields
                    )
            except IntegrityError as error:
                raise DatabaseError(
                    "the article was created concurrently; import it again"
                ) from error
        else:
            for name, value in fields.items():
                setattr(article, name, value)
            article.version += 1
            article.save()
            article.chunks.all().delete()
        Chunk.objects.bulk_create(
            [
                Chunk(
                    article=article,
                    position=draft.position,
                    heading_path=draft.heading_path[:1000],
                    context=draft.context,
                    text=draft.text,
                    token_count=draft.token_count,
                    embedding=list(vector),
                    embedding_model=embedding_model,
                )
                for draft, vector in zip(drafts, vectors, strict=True)
            ]
        )
    return article, created


def articles_unpublish(*, source: Source, keep_external_ids: Iterable[str]) -> int:
    """Unpublish the published articles of `source` not in `keep_external_ids` (prune).

    Their rows and chunks stay, so a file put back is republished without re-embedding.
    """
    return (
        Article.objects.filter(source=source, status=ArticleStatus.PUBLISHED)
        .exclude(external_id__in=list(keep_external_ids))
        .update(status=ArticleStatus.DRAFT)
    )


def article_delete(*, source: Source, external_id: str) -> None:
    deleted, _ = Article.objects.filter(source=source, external_id=external_id).delete()
    if not deleted:
        raise NotFoundError(f"no article {external_id!r} in source {source.name!r}")


def chunks_reembed(
    *,
    everything: bool = False,
    batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> EmbeddingBatch:
    """Re-embed chunks of another model (or all of them) with the active model;
    `on_progress(done, total)` after each batch.

    Idempotent: a second run finds nothing to do. Each batch commits on its own, so an
    interrupted run resumes where it stopped.
    """
    model = embeddings.model_name()
    total = EmbeddingBatch(vectors=[], embedded=0, cached=0)
    last_id = 0
    todo = Chunk.objects.all() if everything else Chunk.objects.exclude(embedding_model=model)
    count, done = todo.count(), 0
    while True:
        queryset = Chunk.objects.filter(id__gt=last_id).order_by("id")
        if not everything:
            queryset = queryset.exclude(embedding_model=model)
        chunks = list(queryset.only("id", "context", "text")[:batch_size])
        if not chunks:
            return total
        batch = embeddings_fetch(
            texts=[embedded_text(context=chunk.context, text=chunk.text) for chunk in chunks]
        )
        for chunk, vector in zip(chunks, batch.vectors, strict=True):
            chunk.embedding = list(vector)
            chunk.embedding_model = model
        with transaction.atomic():
            Chunk.objects.bulk_update(chunks, ["embedding", "embedding_model"])
        total.embedded += batch.embedded
        total.cached += batch.cached
        last_id = chunks[-1].id
        done += len(chunks)
        if on_progress is not None:
            on_progress(done, max(count, done))


BODY_FORMATS = {"markdown": "article.md", "html": "article.html", "text": "article.txt"}


def article_input_build(
    *,
    external_id: str,
    title: str,
    body: str,
    body_format: str = "markdown",
    url: str = "",
    language: str = "en",
    visibility: str = Visibility.PUBLIC,
    tags: Sequence[str] = (),
    status: str = ArticleStatus.PUBLISHED,
) -> ArticleInput:
    """An article pushed by an API client, parsed like an imported file of that format."""
    from apps.knowledge.parsing import ParseError, document_parse

    if body_format not in BODY_FORMATS:
        raise ValidationError(f"format must be one of {', '.join(BODY_FORMATS)}", field="format")
    try:
        document = document_parse(name=BODY_FORMATS[body_format], data=body.encode("utf-8"))
    except ParseError as error:
        raise ValidationError(f"body: {error.reason}", field="body") from error
    if title.strip():
        document.title = title.strip()[:500]
    item = ArticleInput(
        external_id=external_id.strip(),
        document=document,
        url=url,
        language=language.lower(),
        visibility=visibility,
        tags=list(tags),
        status=status,
    )
    item.validate()
    return item


def articles_push(*, source_name: str, items: Sequence[ArticleInput]) -> UpsertReport:
    """Upsert articles sent by an API client into an API source (created on first use)."""
    external_ids = [item.external_id for item in items]
    if len(set(external_ids)) != len(external_ids):
        raise ValidationError("each external_id may appear once per request", field="articles")
    source = source_get_or_create(name=source_name, kind=SourceKind.API)
    return articles_upsert(source=source, articles=items)


def articles_delete(*, source_name: str, external_ids: Sequence[str]) -> int:
    """Delete articles (and their chunks) by external_id; returns how many existed."""
    deleted = (
        Article.objects.filter(source__name=source_name, external_id__in=list(external_ids))
        .delete()[1]
        .get("knowledge.Article", 0)
    )
    return deleted
