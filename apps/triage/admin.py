from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.admin import ProgressMedia, activate_selected, progress_bar
from apps.core.exceptions import DeskpilotError
from apps.triage import selectors
from apps.triage.models import ClassifierVersion, Intent, TrainingExample, TrainingStatus
from apps.triage.services import (
    classifier_version_activate,
    classifier_version_queue_training,
    classifier_version_rollback,
)
from apps.triage.text import normalize_text


@admin.register(Intent)
class IntentAdmin(admin.ModelAdmin):
    list_display = ("name", "handoff_policy", "example_total", "description")
    list_editable = ("handoff_policy",)
    list_filter = ("handoff_policy",)
    search_fields = ("name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Intent]:
        return super().get_queryset(request).annotate(example_total=Count("examples"))

    @admin.display(description="examples", ordering="example_total")
    def example_total(self, intent: Intent) -> int:
        return intent.example_total  # type: ignore[attr-defined]


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = ("text", "intent", "source", "created_at")
    list_filter = ("source", "intent")
    search_fields = ("text",)
    autocomplete_fields = ("intent",)
    list_select_related = ("intent",)
    readonly_fields = ("created_at",)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # The duplicate check runs on the normalised text, which the form does not show.
        obj.normalized_text = normalize_text(obj.text)
        super().save_model(request, obj, form, change)


@admin.register(ClassifierVersion)
class ClassifierVersionAdmin(admin.ModelAdmin):
    change_list_template = "admin/triage/classifierversion/change_list.html"
    list_display = (
        "id",
        "created_at",
        "training",
        "is_active",
        "training_source",
        "example_count",
        "intent_count",
        "accuracy",
        "macro_f1",
        "ece",
        "training_seconds",
    )
    list_filter = ("status", "is_active", "training_source")
    actions = ("activate_version",)
    Media = ProgressMedia

    @admin.display(description="status")
    def training(self, version: ClassifierVersion) -> str:
        running = version.status in (TrainingStatus.PENDING, TrainingStatus.TRAINING)
        if not running:
            return version.get_status_display()
        return format_html(
            "{} {}", version.get_status_display(), progress_bar(done=0, total=None, running=True)
        )

    exclude = ("artifact",)
    readonly_fields = [
        field.name for field in ClassifierVersion._meta.fields if field.name != "artifact"
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ClassifierVersion]:
        return super().get_queryset(request).defer("artifact")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="accuracy")
    def accuracy(self, version: ClassifierVersion) -> float | None:
        return version.metrics.get("accuracy")

    @admin.display(description="macro-F1")
    def macro_f1(self, version: ClassifierVersion) -> float | None:
        return version.metrics.get("macro_f1")

    @admin.display(description="ECE")
    def ece(self, version: ClassifierVersion) -> float | None:
        return version.metrics.get("ece")

    @admin.action(description="Activate the selected version (also to roll back)")
    def activate_version(self, request: HttpRequest, queryset: QuerySet) -> None:
        def one(version: ClassifierVersion) -> str:
            version = classifier_version_activate(
                version_id=version.id, requested_by=request.user.get_username()
            )
            return f"Version {version.id} is now active."

        activate_selected(self, request, queryset, one)

    def get_urls(self):  # type: ignore[no-untyped-def]
        extra = [
            path(
                "train/",
                self.admin_site.admin_view(self.train_view),
                name="triage_classifierversion_train",
            ),
            path(
                "rollback/",
                self.admin_site.admin_view(self.rollback_view),
                name="triage_classifierversion_rollback",
            ),
        ]
        return extra + super().get_urls()

    def changelist_view(self, request, extra_context=None):  # type: ignore[no-untyped-def]
        extra_context = {
            **(extra_context or {}),
            "corrections_waiting": selectors.corrections_waiting_count(),
            "active_version": selectors.classifier_version_active(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def _back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:triage_classifierversion_changelist"))

    def train_view(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if not self.has_change_permission(request):
            return self._back()
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": "Train a new classifier version",
                "corrections_waiting": selectors.corrections_waiting_count(),
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/triage/classifierversion/train.html", context)
        version = classifier_version_queue_training(activate=bool(request.POST.get("activate")))
        self.message_user(
            request,
            f"Training of version {version.id} is queued; refresh to follow its status.",
            messages.SUCCESS,
        )
        return self._back()

    def rollback_view(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if request.method == "POST" and self.has_change_permission(request):
            try:
                version = classifier_version_rollback()
            except DeskpilotError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request, f"Rolled back: version {version.id} is active.", messages.SUCCESS
                )
        return self._back()
