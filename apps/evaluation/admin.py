from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.evaluation.candidates import (
    AGENT_ANSWERS,
    gold_candidates_accept,
    gold_candidates_reject,
)
from apps.evaluation.models import (
    EvalResult,
    EvalRun,
    GateDecision,
    GoldCandidate,
    GoldItem,
    GoldSet,
)


class GoldItemInline(admin.TabularInline):
    model = GoldItem
    extra = 0
    fields = ("question", "expected_intent", "expected_articles", "needs_person", "note")
    show_change_link = True


@admin.register(GoldSet)
class GoldSetAdmin(admin.ModelAdmin):
    list_display = ("name", "origin", "updated_at")
    search_fields = ("name", "description")
    inlines = [GoldItemInline]


@admin.register(GoldItem)
class GoldItemAdmin(admin.ModelAdmin):
    list_display = ("question", "gold_set", "expected_intent", "needs_person", "note")
    list_filter = ("gold_set", "needs_person", "note")
    search_fields = ("question", "expected_intent", "reference_reply")
    readonly_fields = ("key", "created_at")

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        from apps.evaluation.goldsets import gold_key

        obj.key = gold_key(obj.question, [(t["role"], t["text"]) for t in obj.conversation])
        super().save_model(request, obj, form, change)


@admin.register(EvalRun)
class EvalRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "gold_set", "label", "status", "progress", "created_at", "finished_at")
    list_filter = ("status", "gold_set", "label")
    readonly_fields = [field.name for field in EvalRun._meta.fields]


@admin.register(EvalResult)
class EvalResultAdmin(ReadOnlyAdmin):
    list_display = (
        "run",
        "item_key",
        "intent",
        "intent_correct",
        "article_rank",
        "decision",
        "reason",
        "correct",
    )
    list_filter = ("run", "decision", "correct", "intent_correct")
    readonly_fields = [field.name for field in EvalResult._meta.fields]


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "version", "passed", "overridden", "requested_by")
    list_filter = ("kind", "passed", "overridden")
    readonly_fields = [field.name for field in GateDecision._meta.fields]


@admin.register(GoldCandidate)
class GoldCandidateAdmin(admin.ModelAdmin):
    """Replies agents sent, proposed as gold items: accept them into a gold set in bulk."""

    list_display = ("question", "expected_intent", "cited_article", "edited", "status")
    list_filter = ("status", "edited", "expected_intent")
    search_fields = ("question", "reference_reply")
    readonly_fields = [field.name for field in GoldCandidate._meta.fields]
    actions = ["accept", "reject"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.action(description=f"Accept into the gold set '{AGENT_ANSWERS}'")
    def accept(self, request, queryset):  # type: ignore[no-untyped-def]
        accepted = gold_candidates_accept(candidates=list(queryset))
        self.message_user(request, f"{accepted} candidate(s) accepted into {AGENT_ANSWERS}.")

    @admin.action(description="Reject")
    def reject(self, request, queryset):  # type: ignore[no-untyped-def]
        rejected = gold_candidates_reject(candidates=list(queryset))
        self.message_user(request, f"{rejected} candidate(s) rejected.")
