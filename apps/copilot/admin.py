from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.copilot.calibration import calibration_activate
from apps.copilot.models import (
    AssistOff,
    Calibration,
    CopilotPolicy,
    Draft,
    IntentArticleLink,
    LinkLearning,
    PromptTemplate,
    ReplyCacheEntry,
    Takeover,
)
from apps.copilot.services.prompt_templates import prompt_template_activate
from apps.core.admin import activate_selected


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    """A new version is added inactive; the action activates it through the regression gate."""

    list_display = ("purpose", "version", "is_active", "note", "created_at")
    list_filter = ("purpose", "is_active")
    readonly_fields = ("is_active",)
    actions = ["activate"]

    @admin.action(description="Activate the selected version (through the regression gate)")
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        def one(prompt: PromptTemplate) -> str:
            prompt = prompt_template_activate(
                prompt=prompt, requested_by=request.user.get_username()
            )
            return f"Prompt v{prompt.version} is now active."

        activate_selected(self, request, queryset, one)


@admin.register(CopilotPolicy)
class CopilotPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "auto_send_paused",
        "auto_send_threshold",
        "review_threshold",
        "top_k",
        "updated_at",
    )
    list_editable = ("auto_send_paused",)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return not CopilotPolicy.objects.exists()


@admin.register(Calibration)
class CalibrationAdmin(admin.ModelAdmin):
    list_display = ("version", "is_active", "auto_send_threshold", "target_precision", "created_at")
    readonly_fields = ("weights", "metrics", "is_active")
    actions = ["activate"]

    @admin.action(description="Activate the selected version (through the regression gate)")
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        def one(calibration: Calibration) -> str:
            calibration = calibration_activate(
                calibration=calibration, requested_by=request.user.get_username()
            )
            return f"Calibration v{calibration.version} is now active."

        activate_selected(self, request, queryset, one)


@admin.register(IntentArticleLink)
class IntentArticleLinkAdmin(admin.ModelAdmin):
    list_display = ("intent_name", "article", "source", "weight")
    list_filter = ("source",)
    search_fields = ("intent_name", "article__external_id")
    raw_id_fields = ("article",)


@admin.register(LinkLearning)
class LinkLearningAdmin(admin.ModelAdmin):
    """When links were learned, for which classifier and knowledge base. Deleting the row
    makes the pipeline learn them again at its next message."""

    readonly_fields = (
        "classifier_version_id",
        "knowledge_version",
        "intents",
        "examples",
        "links",
        "unsupported",
        "seconds",
    )
    list_display = (*readonly_fields, "created_at")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "ticket_id",
        "message_id",
        "decision",
        "reason",
        "status",
        "confidence",
        "intent",
        "model",
        "created_at",
    )
    list_filter = ("decision", "reason", "status", "evaluation")
    raw_id_fields = ("ticket", "message", "prompt", "acted_by")
    readonly_fields = [f.name for f in Draft._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    # An audit row: never deleted by hand (apps/privacy empties its text when it must).
    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(ReplyCacheEntry)
class ReplyCacheEntryAdmin(admin.ModelAdmin):
    list_display = ("question", "intent", "knowledge_version", "prompt", "hits", "created_at")
    exclude = ("question_embedding",)


@admin.register(Takeover)
class TakeoverAdmin(admin.ModelAdmin):
    list_display = ("ticket", "agent", "created_at")
    raw_id_fields = ("ticket", "agent")


@admin.register(AssistOff)
class AssistOffAdmin(admin.ModelAdmin):
    list_display = ("ticket", "agent", "created_at")
    raw_id_fields = ("ticket", "agent")
