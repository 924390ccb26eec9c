"""Drafts, the prompts and policy they were made with, calibrations, intent→article links,
agent takeovers and the reply cache."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from pgvector.django import VectorField

from apps.core.models import TimeStampedModel

EMBEDDING_DIMENSIONS = 384


class Decision(models.TextChoices):
    AUTO_SENT = "auto_sent", "Auto-sent"
    NEEDS_REVIEW = "needs_review", "Needs review"
    HANDED_OFF = "handed_off", "Handed off"


class HandoffReason(models.TextChoices):
    """Why a draft was not sent on its own: a fixed list, so reasons can be counted."""

    LOW_CONFIDENCE = "low_confidence", "Confidence below the auto-send threshold"
    ALWAYS_HUMAN_INTENT = "always_human_intent", "Always-human intent"
    REVIEW_INTENT = "review_intent", "Intent needs review"
    OUT_OF_SCOPE = "out_of_scope", "Out of scope"
    CUSTOMER_ASKED_HUMAN = "customer_asked_human", "Customer asked for a human"
    UNGROUNDED = "ungrounded", "Reply not supported by the knowledge base"
    NO_ANSWER = "no_answer", "The knowledge base has no answer"
    LANGUAGE_UNSUPPORTED = "language_unsupported", "Language the knowledge base lacks"
    MODEL_UNAVAILABLE = "model_unavailable", "Model unavailable"
    BUDGET = "budget", "LLM budget spent"
    UNCLASSIFIED = "unclassified", "Unclassified (no active classifier)"
    AGENT_TOOK_OVER = "agent_took_over", "An agent took over"
    AUTO_SEND_DISABLED = "auto_send_disabled", "Auto-send disabled for this intent"
    PIPELINE_FAILED = "pipeline_failed", "The pipeline failed"
    NEWER_MESSAGE = "newer_message", "A newer customer message arrived"
    AGENT_REQUESTED = "agent_requested", "Regenerated at an agent's request"
    WITH_AGENT = "with_agent", "The ticket is with a person (drafted for them)"
    AMBIGUOUS_FOLLOW_UP = "ambiguous_follow_up", "A follow-up that reads differently in context"
    AUTO_SEND_PAUSED = "auto_send_paused", "Auto-sending is paused (kill switch)"
    INJECTION_SUSPECTED = "injection_suspected", "The message may carry injected instructions"
    UNSAFE_OUTPUT = "unsafe_output", "The reply failed the output guard"
    GUARD_FAILED = "guard_failed", "A safety check failed to run"


class TurnRole(models.TextChoices):
    """Who wrote a turn of the conversation a draft reads (tickets' author kinds)."""

    CUSTOMER = "customer", "Customer"
    COPILOT = "copilot", "Copilot"
    AGENT = "agent", "Agent"


class DraftStatus(models.TextChoices):
    PENDING = "pending", "Pending (awaiting an agent)"
    NOT_DRAFTED = "not_drafted", "Not drafted (handed off before drafting)"
    AUTO_SENT = "auto_sent", "Auto-sent"
    SENT = "sent", "Sent by an agent"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"


class PromptTemplate(TimeStampedModel):
    """A versioned system prompt; exactly one active per purpose. Edit by adding a version."""

    purpose = models.CharField(max_length=50, default="draft")
    version = models.PositiveIntegerField()
    body = models.TextField(
        help_text="The system prompt. The output contract and the delimited data sections "
        "(passages, customer message) are appended by the pipeline."
    )
    is_active = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "version"], name="copilot_prompt_unique_version"
            ),
            models.UniqueConstraint(
                fields=["purpose"],
                condition=Q(is_active=True),
                name="copilot_prompt_one_active",
            ),
        ]
        ordering = ["purpose", "-version"]

    def __str__(self) -> str:
        return f"{self.purpose} v{self.version}{' (active)' if self.is_active else ''}"


class ExperimentStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished (every arm reached the horizon)"
    STOPPED = "stopped", "Stopped early"
    PROMOTED = "promoted", "Winner promoted"


class ExperimentMetric(models.TextChoices):
    """What an experiment is decided on, each per draft (see apps/evaluation/experiments.py)."""

    ACCEPTED = "accepted", "Reached the customer unchanged (auto-sent or sent by an agent as is)"
    AUTO_SENT = "auto_sent", "Auto-sent"
    REJECTED = "rejected", "Rejected by an agent (lower is better)"
    THUMBS_UP = "thumbs_up", "Thumbs up among rated replies"


class Experiment(TimeStampedModel):
    """An A/B test on live traffic: tickets split between arms by a stable hash of the
    ticket, every draft recording its arm. At most one runs at a time.

    The stopping rule is fixed before it starts: `horizon_per_arm` drafts per arm, computed
    from the primary metric's baseline, the smallest difference worth detecting, `alpha` and
    `power`. The verdict is read once, when every live arm has reached it; figures before
    then are for watching for harm, not for deciding."""

    name = models.SlugField(max_length=100, unique=True)
    hypothesis = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.RUNNING
    )
    primary_metric = models.CharField(
        max_length=16, choices=ExperimentMetric.choices, default=ExperimentMetric.ACCEPTED
    )
    baseline_rate = models.FloatField(help_text="The primary metric's expected control rate.")
    minimum_effect = models.FloatField(
        help_text="The smallest absolute difference in the primary metric worth detecting."
    )
    alpha = models.FloatField(default=0.05)
    power = models.FloatField(default=0.8)
    horizon_per_arm = models.PositiveIntegerField(
        help_text="Drafts per arm after which the experiment is analysed, once."
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=500, blank=True)
    winner = models.ForeignKey(
        "copilot.ExperimentArm",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="running"),
                name="copilot_experiment_one_running",
            ),
            models.CheckConstraint(
                condition=Q(alpha__gt=0, alpha__lt=0.5), name="copilot_experiment_alpha_range"
            ),
            models.CheckConstraint(
                condition=Q(minimum_effect__gt=0, minimum_effect__lt=1),
                name="copilot_experiment_effect_range",
            ),
        ]

    def __str__(self) -> str:
        return f"experiment {self.name} ({self.status})"


class ExperimentArm(models.Model):
    """One arm: what it changes for the tickets it gets. The control arm (first) pins the
    configuration active when the experiment started."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.SlugField(max_length=50)
    position = models.PositiveSmallIntegerField(default=0)
    is_control = models.BooleanField(default=False)
    weight = models.FloatField(help_text="Share of tickets, relative to the other arms.")
    # A deleted prompt version stops the arm (the others go on); `prompt_version` says which.
    prompt = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_version = models.PositiveIntegerField(null=True, blank=True)
    model_alias = models.CharField(max_length=50, blank=True)
    auto_send_threshold = models.FloatField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["experiment_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "name"], name="copilot_experiment_arm_unique_name"
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="copilot_arm_weight_positive"),
            models.CheckConstraint(
                condition=Q(auto_send_threshold__isnull=True)
                | Q(auto_send_threshold__gte=0, auto_send_threshold__lte=1),
                name="copilot_arm_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}/{self.name}"

    def changes(self) -> str:
        """What this arm runs, in words."""
        parts = []
        if self.prompt_version is not None:
            parts.append(f"prompt v{self.prompt_version}")
        if self.model_alias:
            parts.append(f"model {self.model_alias}")
        if self.auto_send_threshold is not None:
            parts.append(f"auto-send at {self.auto_send_threshold:g}")
        return ", ".join(parts) or "the active configuration"


class CopilotPolicy(TimeStampedModel):
    """Runtime knobs an admin changes. One row (id 1); an empty field means the setting."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    auto_send_threshold = models.FloatField(
        null=True, blank=True, help_text="Confidence at or above which a draft is auto-sent."
    )
    review_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Below this confidence the ticket is handed off; between it and the "
        "auto-send threshold an agent reviews the draft.",
    )
    top_k = models.PositiveSmallIntegerField(null=True, blank=True)
    groundedness_threshold = models.FloatField(null=True, blank=True)
    intent_boost = models.FloatField(
        null=True,
        blank=True,
        help_text="Retrieval boost of articles linked to the predicted intent (fused score).",
    )
    routing_min_intent_probability = models.FloatField(null=True, blank=True)
    routing_min_retrieval_score = models.FloatField(null=True, blank=True)
    routing_max_message_chars = models.PositiveIntegerField(null=True, blank=True)
    routing_max_questions = models.PositiveSmallIntegerField(null=True, blank=True)
    # {"intent_name": {"auto_send": false}}: per-intent overrides of the decision.
    intent_overrides = models.JSONField(default=dict, blank=True)
    cache_enabled = models.BooleanField(default=True)
    draft_alias = models.CharField(
        max_length=50,
        blank=True,
        help_text="Every draft is written by this model alias (blank: routing chooses "
        "between draft-fast and draft-strong). Set by promoting an experiment's model arm.",
    )
    auto_send_paused = models.BooleanField(
        default=False,
        help_text="Kill switch: nothing is sent on its own while this is on; drafts are still "
        "written for agents, with reason auto_send_paused. Every worker reads it for each "
        "message. Also `manage.py copilot_pause` / `copilot_resume`.",
    )

    class Meta:
        verbose_name_plural = "copilot policy"
        constraints = [
            models.CheckConstraint(condition=Q(singleton=True), name="copilot_policy_singleton"),
        ]

    def __str__(self) -> str:
        return "Copilot policy"


class Calibration(TimeStampedModel):
    """Fitted confidence weights (see confidence.calibration_fit), versioned, one active."""

    version = models.PositiveIntegerField(unique=True)
    weights = models.JSONField(help_text="feature_names, weights, bias, method")
    metrics = models.JSONField(default=dict, blank=True)
    auto_send_threshold = models.FloatField(
        null=True, blank=True, help_text="The threshold picked for the target precision."
    )
    target_precision = models.FloatField(null=True, blank=True)
    gold_set = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="copilot_calibration_one_active",
            ),
        ]
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"calibration v{self.version}{' (active)' if self.is_active else ''}"


class LinkSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    LEARNED_FROM_EXAMPLES = "learned_from_examples", "Learned from training examples"
    ACCEPTED_DRAFT = "accepted_draft", "Accepted draft"


class IntentArticleLink(TimeStampedModel):
    """This article answers this intent: retrieval boosts it when the intent is predicted."""

    # A name, like tickets' intent: triage's Intent rows may be renamed or re-imported.
    intent_name = models.CharField(max_length=100, db_index=True)
    article = models.ForeignKey(
        "knowledge.Article", on_delete=models.CASCADE, related_name="intent_links"
    )
    source = models.CharField(max_length=32, choices=LinkSource.choices, default=LinkSource.ADMIN)
    weight = models.FloatField(default=1.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["intent_name", "article", "source"], name="copilot_link_unique"
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=0, weight__lte=1), name="copilot_link_weight_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.intent_name} → {self.article_id} ({self.source})"


class LinkPenalty(models.Model):
    """A customer disliked a reply of this intent that cited this article (a thumbs-down
    flag, `ref`): the link counts for LINK_PENALTY_FACTOR less per open complaint, in
    retrieval's boost and in the confidence, until an admin reviews the flag."""

    intent_name = models.CharField(max_length=100, db_index=True)
    article = models.ForeignKey("knowledge.Article", on_delete=models.CASCADE, related_name="+")
    ref = models.CharField(max_length=100, unique=True)  # e.g. "flagged-reply:12"
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.intent_name} → {self.article_id} lowered ({self.ref})"


class LinkLearning(TimeStampedModel):
    """Intent→article links were learned for this classifier version over this knowledge base.

    One row per (classifier version, knowledge version): its presence tells the pipeline
    that the links in force match what it classifies and searches; a new classifier version
    or a knowledge-base change makes the pipeline learn them again (see links.py).
    """

    classifier_version_id = models.BigIntegerField()
    knowledge_version = models.CharField(max_length=100)
    intents = models.PositiveIntegerField(default=0)
    examples = models.PositiveIntegerField(default=0)
    links = models.PositiveIntegerField(default=0)
    # Intents whose examples agreed on an article that has no passage about them (links.py).
    unsupported = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["classifier_version_id", "knowledge_version"],
                name="copilot_link_learning_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"links learned for classifier {self.classifier_version_id} ({self.links} links)"


class Takeover(models.Model):
    """An agent owns this ticket: the copilot drafts nothing for it until handed back."""

    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="copilot_takeover"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"ticket #{self.ticket_id} taken over"


class AssistOff(models.Model):
    """An agent switched the copilot's drafts off for this ticket: its next customer messages
    get no draft at all (by default a ticket with a person still gets drafts for them)."""

    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="copilot_assist_off"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "drafts switched off for a ticket"
        verbose_name_plural = "drafts switched off for tickets"

    def __str__(self) -> str:
        return f"ticket #{self.ticket_id}: drafts off"


class Draft(TimeStampedModel):
    """The copilot's reply to one customer message, with everything that explains it.

    One current draft per message (partial unique constraint); regenerating marks the old
    one superseded (is_current false) and keeps it as history. `generation` is 1 for the
    pipeline's own draft, so a second pipeline run cannot insert another (unique).
    """

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="drafts")
    message = models.ForeignKey("tickets.Message", on_delete=models.CASCADE, related_name="drafts")
    generation = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=DraftStatus.choices, default=DraftStatus.PENDING
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.CharField(max_length=32, choices=HandoffReason.choices, blank=True)
    reason_detail = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True)
    confidence_features = models.JSONField(default=dict, blank=True)
    calibration_version = models.PositiveIntegerField(null=True, blank=True)
    intent = models.CharField(max_length=100, blank=True)
    intent_probability = models.FloatField(null=True, blank=True)
    classifier_version_id = models.BigIntegerField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True)
    routed_alias = models.CharField(max_length=50, blank=True)
    routing_reason = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="drafts"
    )
    answerable = models.BooleanField(null=True, blank=True)
    citations = models.JSONField(default=list, blank=True)
    retrieved = models.JSONField(default=list, blank=True)
    validation = models.JSONField(default=dict, blank=True)
    # The input guard's verdict: the injection scan (evidence, classifier score) and any
    # instructions found in the retrieved passages.
    guard = models.JSONField(default=dict, blank=True)
    stage_timings = models.JSONField(default=dict, blank=True)
    trace_id = models.CharField(
        max_length=32, blank=True, help_text="The OpenTelemetry trace that wrote it (tracing on)."
    )
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    llm_call_ids = models.JSONField(default=list, blank=True)
    streamed = models.BooleanField(default=False)
    shown_while_drafting = models.BooleanField(
        default=False,
        help_text="The customer watched this draft being written in the widget (it was on "
        "course to be auto-sent); if it was not sent, its text was withdrawn from their view.",
    )
    cache_hit = models.CharField(
        max_length=16, blank=True, help_text="'exact' or 'semantic' when served from the cache"
    )
    knowledge_version = models.CharField(max_length=100, blank=True)
    context = models.JSONField(
        default=dict,
        blank=True,
        help_text="The conversation the draft read: earlier turns used and dropped, open "
        "questions, the reading kept (message alone or in context) and the query searched.",
    )
    evaluation = models.BooleanField(
        default=False, help_text="Made by an evaluation run: never sent, no ticket changes."
    )
    acted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sent_message_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    experiment_arm = models.ForeignKey(
        "copilot.ExperimentArm",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drafts",
        help_text="The A/B experiment arm that wrote this draft (its prompt, model, threshold).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message"], condition=Q(is_current=True), name="copilot_draft_one_current"
            ),
            models.UniqueConstraint(
                fields=["message", "generation"], name="copilot_draft_unique_generation"
            ),
            models.CheckConstraint(
                condition=Q(decision="auto_sent") | ~Q(reason=""),
                name="copilot_draft_reason_unless_auto",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="copilot_draft_confidence_range",
            ),
        ]
        indexes = [models.Index(fields=["ticket", "-id"], name="copilot_draft_ticket_idx")]

    def __str__(self) -> str:
        return f"draft #{self.pk} for message #{self.message_id} ({self.decision})"


class ReplyCacheEntry(TimeStampedModel):
    """A reply the model wrote, reusable for the same question under the same KB and prompt.

    `key` is sha256(normalised question, knowledge version, prompt id): a KB or prompt
    change makes every old key unreachable. The semantic lookup compares question
    embeddings (cosine ≥ COPILOT_SEMANTIC_CACHE_SIMILARITY) within the same versions and
    intent.
    """

    key = models.CharField(max_length=64, unique=True)
    question = models.TextField()
    question_embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    intent = models.CharField(max_length=100, blank=True)
    knowledge_version = models.CharField(max_length=100)
    prompt = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="+")
    reply = models.JSONField(help_text="reply, model, citations (the cited passages)")
    hits = models.PositiveIntegerField(default=0)
    # The ticket whose question this is (the latest one stored under the key), so erasing
    # that customer's data finds the entry. An id, not a key: the ticket may be deleted.
    source_ticket_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "reply cache entry"
        verbose_name_plural = "reply cache entries"
        indexes = [models.Index(fields=["knowledge_version", "prompt", "intent"])]

    def __str__(self) -> str:
        return self.question[:60]
