"""Gold sets (questions with what the right answer is) and evaluation runs over them.

A run measures one configuration (classifier, prompt, calibration, policy, knowledge base,
models: recorded on the run) by composing a draft for every gold item the way the live
pipeline does, in evaluation mode: no ticket, nothing sent, no cache. Each item's result is
kept, so two runs on the same gold set compare item by item (`item_key`).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class GoldSet(TimeStampedModel):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    origin = models.CharField(
        max_length=500, blank=True, help_text="Where it came from: a file, the demo, agents' work."
    )

    def __str__(self) -> str:
        return self.name


class GoldItem(models.Model):
    """One question (or the last message of a conversation) and its right outcome.

    `expected_articles` are knowledge-base external ids, any of which answers it; empty
    with `needs_person` means no article does: a person must answer (`note` says why, e.g.
    out_of_scope, asks_for_human, other_language)."""

    gold_set = models.ForeignKey(GoldSet, on_delete=models.CASCADE, related_name="items")
    # sha256 of the normalised question and earlier turns: one item per question per set,
    # and what pairs the results of two runs.
    key = models.CharField(max_length=64, editable=False)
    question = models.TextField()
    # Earlier turns, oldest first: [{"role": "customer"|"agent"|"copilot", "text": "..."}].
    conversation = models.JSONField(default=list, blank=True)
    expected_intent = models.CharField(max_length=100, blank=True)
    expected_articles = models.JSONField(default=list, blank=True)
    needs_person = models.BooleanField(default=False)
    note = models.CharField(max_length=100, blank=True)
    reference_reply = models.TextField(blank=True)
    origin = models.CharField(max_length=500, blank=True)
    # The ticket it was taken from (an agent's sent reply), so erasing that customer finds it.
    source_ticket_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["gold_set", "key"], name="eval_gold_item_unique"),
            models.CheckConstraint(
                condition=~Q(question=""), name="eval_gold_item_question_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return self.question[:80]


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class EvalRun(TimeStampedModel):
    gold_set = models.ForeignKey(GoldSet, on_delete=models.CASCADE, related_name="runs")
    label = models.CharField(max_length=200, blank=True, help_text="nightly, manual, gate, ...")
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    # What was measured: classifier, prompt, calibration and policy versions, knowledge-base
    # version, model deployments per alias; and the overrides asked for (`--against`).
    config = models.JSONField(default=dict, blank=True)
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    deliveries = models.PositiveIntegerField(
        default=1, help_text="How many times its batches were published (the sweep re-sends)."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="eval_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(items_done__lte=models.F("items_total")),
                name="eval_run_done_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} on {self.gold_set_id} ({self.status})"

    @property
    def progress(self) -> str:
        return f"{self.items_done}/{self.items_total}"


class EvalResult(models.Model):
    """What the pipeline did with one gold item in one run."""

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey(
        GoldItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    item_key = models.CharField(max_length=64)
    classifier_version_id = models.BigIntegerField(null=True, blank=True)
    intent = models.CharField(max_length=100, blank=True)
    intent_correct = models.BooleanField(null=True, blank=True)  # None: no intent expected
    articles = models.JSONField(default=list, blank=True)  # retrieved, best first, distinct
    article_rank = models.PositiveSmallIntegerField(null=True, blank=True)  # 1-based
    cited_article = models.CharField(max_length=500, blank=True)
    decision = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=32, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    # The decision was right: a reply citing an expected article was auto-sent, or a reply
    # that was wrong or that a person must give was kept back.
    correct = models.BooleanField(default=False)
    reply = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    judgement = models.JSONField(default=dict, blank=True)  # the judge's scores, real models only
    stage_timings = models.JSONField(default=dict, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=Decimal("0"))
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item_key"], name="eval_result_once_per_item")
        ]

    def __str__(self) -> str:
        return f"run #{self.run_id} item {self.item_key[:8]}: {self.decision}"


class GateDecision(models.Model):
    """The regression gate's verdict on one version: its paired checks per gold set and
    metric, the runs compared, and an admin's override with the reason."""

    kind = models.CharField(max_length=20)  # classifier, prompt, calibration
    version = models.PositiveIntegerField()
    passed = models.BooleanField()
    overridden = models.BooleanField(default=False)
    override_reason = models.TextField(blank=True)
    requested_by = models.CharField(max_length=200, blank=True)
    checks = models.JSONField(default=list, blank=True)
    run_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(overridden=False) | ~Q(override_reason=""),
                name="eval_gate_override_has_reason",
            )
        ]

    def __str__(self) -> str:
        verdict = "passed" if self.passed else ("overridden" if self.overridden else "refused")
        return f"{self.kind} v{self.version}: {verdict}"


class CandidateStatus(models.TextChoices):
    NEW = "new", "New"
    ACCEPTED = "accepted", "Accepted into a gold set"
    REJECTED = "rejected", "Rejected"


class GoldCandidate(models.Model):
    """A reply an agent sent (as drafted or edited) proposed as a gold item: the customer's
    question, the article the draft cited, the reply actually sent. An admin accepts
    candidates into a gold set in bulk (admin action)."""

    draft_action_id = models.BigIntegerField(unique=True)  # feedback's DraftAction
    ticket_id = models.BigIntegerField(db_index=True)
    question = models.TextField()
    expected_intent = models.CharField(max_length=100, blank=True)
    cited_article = models.CharField(max_length=500, blank=True)
    reference_reply = models.TextField()
    edited = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=CandidateStatus.choices, default=CandidateStatus.NEW, db_index=True
    )
    gold_item = models.ForeignKey(
        GoldItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CandidateStatus.values), name="eval_candidate_status_valid"
            )
        ]

    def __str__(self) -> str:
        return self.question[:80]


class GapStatus(models.TextChoices):
    OPEN = "open", "Open"
    ARTICLE_DRAFTED = "article_drafted", "Draft article created"
    DISMISSED = "dismissed", "Dismissed"


class KnowledgeGap(models.Model):
    """Questions agents keep answering with no knowledge-base article behind them, clustered
    (apps/evaluation/gaps.py), with the agents' own answers proposed as a draft article.

    The questions are kept pseudonymised (personal data replaced by typed placeholders), the
    answers with emails, phones, cards and IBANs masked. An open gap is recomputed by each
    refresh; a drafted or dismissed one is kept as it is, and its messages are never
    clustered again."""

    title = models.CharField(max_length=300, help_text="The question nearest the cluster's centre.")
    status = models.CharField(
        max_length=16, choices=GapStatus.choices, default=GapStatus.OPEN, db_index=True
    )
    intent = models.CharField(max_length=100, blank=True, help_text="The most common intent.")
    tickets = models.PositiveIntegerField(default=0)
    # [{"message_id", "ticket_id", "text", "reason"}] and [{"message_id", "text"}]
    questions = models.JSONField(default=list)
    answers = models.JSONField(default=list)
    message_ids = models.JSONField(default=list)
    proposed_body = models.TextField(blank=True)
    article_external_id = models.CharField(max_length=500, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-tickets", "-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.title[:80]} ({self.tickets} tickets)"
