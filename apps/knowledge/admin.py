from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.core.admin import ProgressMedia, progress_bar
from apps.core.exceptions import DeskpilotError
from apps.knowledge.models import Article, Chunk, ImportRun, ImportState, Source
from apps.knowledge.uploads import upload_import


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):  # type: ignore[no-untyped-def]
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    # Django's form metaclass pops declared fields off the class: no clash with
    # `BaseForm.files` at run time, which the stubs cannot see.
    files = MultipleFileField()  # type: ignore[assignment]
    source = forms.CharField(max_length=100, initial="uploads")
    prune = forms.BooleanField(
        required=False, help_text="unpublish articles of this source that are not in this upload"
    )


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
        "progress",
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "created_at",
    )
    list_filter = ("state", "source")
    readonly_fields = [field.name for field in ImportRun._meta.fields]
    Media = ProgressMedia

    @admin.display(description="files")
    def progress(self, run: ImportRun) -> str:
        running = run.state in (ImportState.QUEUED, ImportState.RUNNING)
        return progress_bar(done=run.processed, total=run.total, running=running)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def get_urls(self):  # type: ignore[no-untyped-def]
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name="knowledge_importrun_upload",
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request) or not request.user.has_perm(
            "knowledge.add_article"
        ):
            return HttpResponse(status=403)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = upload_import(
                    files=form.cleaned_data["files"],
                    source_name=form.cleaned_data["source"],
                    prune=form.cleaned_data["prune"],
                )
            except DeskpilotError as error:
                form.add_error("files", error.message)
            else:
                messages.success(request, f"Import run #{run.pk} queued.")
                return HttpResponseRedirect(reverse("admin:knowledge_importrun_changelist"))
        context = {**self.admin_site.each_context(request), "form": form, "title": "Upload"}
        return TemplateResponse(request, "admin/knowledge/importrun/upload.html", context)
