from django.contrib import admin

from apps.knowledge.models import Article, Chunk, ImportRun, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "url", "is_active", "last_crawled_at")
    list_filter = ("kind", "is_active")


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ("position", "heading_path", "token_count", "embedding_model", "text")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "external_id", "source", "status", "visibility", "language", "version")
    list_filter = ("source", "status", "visibility", "language")
    search_fields = ("title", "external_id")
    # Content comes from the source (import, API, crawl); editing here would be overwritten.
    readonly_fields = ("source", "external_id", "content_hash", "version", "body", "created_at")
    fields = (
        "source",
        "external_id",
        "title",
        "url",
        "status",
        "visibility",
        "language",
        "tags",
        "version",
        "content_hash",
        "body",
    )
    inlines = [ChunkInline]


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "source",
        "state",
        "processed",
        "total",
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "created_at",
    )
    list_filter = ("state", "source")
    readonly_fields = [field.name for field in ImportRun._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
