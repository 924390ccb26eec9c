from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from apps.copilot.models import Experiment, ExperimentArm, ExperimentMetric
from apps.copilot.services.experiments import arm_spec_parse, experiment_start
from apps.core.admin import ProgressMedia, ReadOnlyAdmin, activate_selected, progress_bar
from apps.core.exceptions import DeskpilotError
from apps.evaluation.candidates import (
    AGENT_ANSWERS,
    gold_candidates_accept,
    gold_candidates_reject,
)
from apps.evaluation.experiments import (
    experiment_promote,
    experiment_report,
    experiment_stop,
    stopping_rule,
)
from apps.evaluation.gaps import GAP_SOURCE, knowledge_gap_dismiss, knowledge_gap_draft_article
from apps.evaluation.models import (
    EvalResult,
    EvalRun,
    GateDecision,
    GoldCandidate,
    GoldItem,
    GoldSet,
    KnowledgeGap,
    RunStatus,
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
    list_display = ("id", "gold_set", "label", "status", "items", "created_at", "finished_at")
    list_filter = ("status", "gold_set", "label")
    readonly_fields = [field.name for field in EvalRun._meta.fields]
    Media = ProgressMedia

    @admin.display(description="items")
    def items(self, run: EvalRun) -> str:
        running = run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        return progress_bar(done=run.items_done, total=run.items_total, running=running)


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


class ExperimentStartForm(forms.Form):
    name = forms.SlugField(max_length=100)
    hypothesis = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    arms = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One arm per line, the control first: name[:prompt=N][:model=ALIAS]"
        "[:threshold=X][:share=W]. E.g. 'control' then 'new-prompt:prompt=3'.",
    )
    primary_metric = forms.ChoiceField(choices=ExperimentMetric.choices)
    baseline_rate = forms.FloatField(initial=0.4, help_text="the control's expected rate")
    minimum_effect = forms.FloatField(initial=0.05, help_text="smallest difference worth it")
    alpha = forms.FloatField(initial=0.05)
    power = forms.FloatField(initial=0.8)


class ExperimentArmInline(admin.TabularInline):
    model = ExperimentArm
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "name", "is_control", "weight", "prompt_version", "model_alias",
        "auto_send_threshold", "stopped_at", "stopped_reason",
    )  # fmt: skip

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """A/B experiments: started from "Add" (the horizon is computed and stated before any
    traffic), watched on the change page (per-arm outcomes with intervals), stopped or
    promoted with the actions."""

    list_display = ("name", "status", "primary_metric", "horizon_per_arm", "winner", "started_at")
    list_filter = ("status",)
    inlines = [ExperimentArmInline]
    actions = ["promote", "stop"]
    readonly_fields = (
        "name", "hypothesis", "status", "primary_metric", "baseline_rate", "minimum_effect",
        "alpha", "power", "horizon_per_arm", "started_at", "ended_at", "end_reason", "winner",
        "created_by", "outcomes",
    )  # fmt: skip

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def add_view(self, request, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        form = ExperimentStartForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            lines = [line for line in data["arms"].splitlines() if line.strip()]
            try:
                experiment = experiment_start(
                    name=data["name"],
                    arms=[arm_spec_parse(line) for line in lines],
                    primary_metric=data["primary_metric"],
                    baseline_rate=data["baseline_rate"],
                    minimum_effect=data["minimum_effect"],
                    alpha=data["alpha"],
                    power=data["power"],
                    hypothesis=data["hypothesis"],
                    created_by=request.user.get_username(),
                )
            except DeskpilotError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    f"Experiment {experiment.name} started: {stopping_rule(experiment)}.",
                    messages.SUCCESS,
                )
                return redirect("admin:copilot_experiment_change", experiment.pk)
        context = {**self.admin_site.each_context(request), "form": form,
                   "title": "Start an A/B experiment", "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/copilot/experiment/start.html", context)

    @admin.display(description="Live outcomes")
    def outcomes(self, experiment: Experiment) -> str:
        return render_to_string(
            "admin/copilot/experiment/_report.html", {"report": experiment_report(experiment)}
        )

    @admin.action(description="Promote the verdict's winner (through the regression gate)")
    def promote(self, request, queryset):  # type: ignore[no-untyped-def]
        def done(experiment: Experiment) -> str:
            changed = experiment_promote(
                experiment=experiment, requested_by=request.user.get_username()
            )
            return f"Experiment {experiment.name} promoted: {'; '.join(changed)}."

        activate_selected(self, request, queryset, done)

    @admin.action(description="Stop early (no verdict)")
    def stop(self, request, queryset):  # type: ignore[no-untyped-def]
        def done(experiment: Experiment) -> str:
            experiment_stop(
                experiment=experiment,
                reason=f"stopped early from the admin by {request.user.get_username()}",
            )
            return f"Experiment {experiment.name} stopped."

        activate_selected(self, request, queryset, done)


@admin.register(KnowledgeGap)
class KnowledgeGapAdmin(admin.ModelAdmin):
    """Questions agents keep answering without an article: turn one into a draft article
    (in the `knowledge-gaps` source, unpublished, for editing) or dismiss it."""

    list_display = ("title", "tickets", "intent", "status", "last_seen_at")
    list_filter = ("status", "intent")
    search_fields = ("title",)
    readonly_fields = (
        "title", "status", "intent", "tickets", "first_seen_at", "last_seen_at",
        "article_external_id", "questions_list", "answers_list",
    )  # fmt: skip
    fields = (*readonly_fields, "proposed_body")
    actions = ["draft_article", "dismiss"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="Questions")
    def questions_list(self, gap: KnowledgeGap) -> str:
        return format_html_join(
            "", "<p>{} <small>(ticket #{}, {})</small></p>",
            ((q["text"], q["ticket_id"], q["reason"]) for q in gap.questions),
        )  # fmt: skip

    @admin.display(description="What agents answered")
    def answers_list(self, gap: KnowledgeGap) -> str:
        return format_html_join("", "<p>{}</p>", ((a["text"],) for a in gap.answers))

    @admin.action(description="Create a draft article from the proposal")
    def draft_article(self, request, queryset):  # type: ignore[no-untyped-def]
        done = []
        for gap in queryset:
            try:
                done.append(knowledge_gap_draft_article(gap=gap))
            except DeskpilotError as error:
                self.message_user(request, f"gap #{gap.pk}: {error.message}", messages.ERROR)
        if done:
            self.message_user(
                request,
                f"Draft article(s) {', '.join(done)} created in the '{GAP_SOURCE}' source: "
                "edit and publish them in the knowledge base.",
                messages.SUCCESS,
            )

    @admin.action(description="Dismiss (not a gap)")
    def dismiss(self, request, queryset):  # type: ignore[no-untyped-def]
        for gap in queryset:
            knowledge_gap_dismiss(gap=gap)
        self.message_user(request, f"{queryset.count()} gap(s) dismissed.")
