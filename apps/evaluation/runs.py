"""Evaluation runs: the real pipeline over a gold set, in evaluation mode, on the `eval` queue.

A run is created with its configuration recorded (the active versions, or the ones asked for
with `against`), then its items are published as batches of EVAL_BATCH_SIZE to the `eval`
queue, where workers compose a draft for each item exactly as the pipeline task does
(`draft_compose`: guard, triage, retrieval, drafting, validation, decision) without a ticket,
a cache or a send. Each item's result is stored once (unique per run and item), so a batch
delivered twice or resumed after a killed worker does no item twice. The batch that stores
the last result computes the run's metrics. A run whose batches stopped coming (every worker
killed, the broker lost them) is re-published by the sweep, up to EVAL_MAX_DELIVERIES times,
then failed with the reason: never counted as a pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.copilot.models import Calibration, Decision, PromptTemplate
from apps.copilot.pipeline.compose import draft_compose
from apps.copilot.pipeline.context import Conversation, Turn
from apps.copilot.selectors import calibration_active, calibration_evaluated, policy_effective
from apps.copilot.services import prompt_template_ensure_default
from apps.core.exceptions import NotFoundError, ValidationError
from apps.evaluation.judge import judge_applies, reply_judge
from apps.evaluation.metrics import run_metrics
from apps.evaluation.models import EvalResult, EvalRun, GoldItem, GoldSet, RunStatus
from apps.knowledge.selectors import knowledge_version
from apps.triage.models import ClassifierVersion, TrainingStatus
from apps.triage.runtime import classifier_evaluated
from apps.triage.selectors import classifier_version_active_id

logger = logging.getLogger(__name__)

RUN_TASK = "evaluation.run_batch"
EVAL_QUEUE = "eval"
AGAINST_KINDS = ("classifier", "prompt", "calibration")


def against_parse(values: list[str]) -> dict[str, int]:
    """`["classifier:12", "prompt:3"]` → {"classifier": 12, "prompt": 3}, each checked to
    exist (a classifier version must be trained). ValidationError/NotFoundError say why."""
    parsed: dict[str, int] = {}
    for value in values:
        kind, _, number = value.partition(":")
        if kind not in AGAINST_KINDS or not number.isdigit():
            raise ValidationError(
                f"--against {value!r}: write kind:version, kind one of {', '.join(AGAINST_KINDS)}",
                field="against",
            )
        parsed[kind] = int(number)
    if (
        "classifier" in parsed
        and not ClassifierVersion.objects.filter(
            pk=parsed["classifier"], status=TrainingStatus.READY
        ).exists()
    ):
        raise NotFoundError(
            f"no trained classifier version {parsed['classifier']}", field="against"
        )
    if "prompt" in parsed and not _prompt(parsed["prompt"]):
        raise NotFoundError(f"no draft prompt version {parsed['prompt']}", field="against")
    if (
        "calibration" in parsed
        and not Calibration.objects.filter(version=parsed["calibration"]).exists()
    ):
        raise NotFoundError(f"no calibration version {parsed['calibration']}", field="against")
    return parsed


def _prompt(version: int | None) -> PromptTemplate | None:
    if version is None:
        return prompt_template_ensure_default()
    return PromptTemplate.objects.filter(purpose="draft", version=version).first()


def configuration(against: dict[str, int]) -> dict:
    """What a run measures: the versions in force with `against` applied, the knowledge
    base's version, the policy's thresholds and the models behind each alias."""
    with versions_evaluated(against):
        calibration = calibration_active()
        policy = policy_effective()
        prompt = _prompt(against.get("prompt"))
        return {
            "against": against,
            "classifier_version_id": against.get("classifier", classifier_version_active_id()),
            "prompt_version": prompt.version if prompt else None,
            "calibration_version": calibration.version if calibration else None,
            "knowledge_version": knowledge_version(),
            "policy": {
                "auto_send_threshold": policy.auto_send_threshold,
                "review_threshold": policy.review_threshold,
                "top_k": policy.top_k,
                "groundedness_threshold": policy.groundedness_threshold,
            },
            "models": {
                alias: [deployment.model for deployment in deployments]
                for alias, deployments in settings.LLM_DEPLOYMENTS.items()
            },
        }


@contextmanager
def versions_evaluated(against: dict[str, int]) -> Iterator[None]:
    """Within: the classifier and calibration versions of `against` stand in for the active
    ones, for this thread only (the live pipeline in other threads is untouched)."""
    with (
        classifier_evaluated(against.get("classifier")),
        calibration_evaluated(against.get("calibration")),
    ):
        yield


def eval_run_create(
    *,
    gold_set: GoldSet,
    label: str = "manual",
    against: dict[str, int] | None = None,
    publish: bool = True,
) -> EvalRun:
    """A queued run of `gold_set` with its configuration recorded; its batches are published
    when the transaction commits (not with `publish=False`: the caller runs them itself). An
    empty gold set is refused."""
    total = gold_set.items.count()
    if total == 0:
        raise ValidationError(f"gold set {gold_set.name!r} has no items", field="gold_set")
    run = EvalRun.objects.create(
        gold_set=gold_set,
        label=label[:200],
        config=configuration(against or {}),
        items_total=total,
    )
    if publish:
        transaction.on_commit(lambda: eval_batches_publish(run_id=run.pk))
    return run


def eval_batches_publish(*, run_id: int) -> int:
    """Publish the run's items that have no result yet, in batches; returns how many batches.
    A broker that is down leaves the run queued for the sweep."""
    from config.celery import app

    done = set(EvalResult.objects.filter(run_id=run_id).values_list("item_key", flat=True))
    pending = [
        pk
        for pk, key in GoldItem.objects.filter(gold_set__runs=run_id)
        .order_by("id")
        .values_list("pk", "key")
        if key not in done
    ]
    size = settings.EVAL_BATCH_SIZE
    batches = [pending[start : start + size] for start in range(0, len(pending), size)]
    try:
        for batch in batches:
            app.send_task(RUN_TASK, args=[run_id, batch], queue=EVAL_QUEUE)
    except Exception as error:
        logger.warning("eval run %s: batches not published (%r); the sweep will", run_id, error)
        return 0
    return len(batches)


def eval_batch_run(*, run_id: int, item_ids: list[int]) -> int:
    """Evaluate these items of the run (those without a result yet); returns how many were
    done now. The batch that completes the run computes its metrics."""
    run = EvalRun.objects.select_related("gold_set").filter(pk=run_id).first()
    if run is None or run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return 0
    EvalRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    against = run.config.get("against", {})
    prompt = _prompt(against.get("prompt"))
    if prompt is None:
        eval_run_fail(run_id=run_id, error=f"draft prompt version {against['prompt']} is gone")
        return 0
    done_keys = set(run.results.values_list("item_key", flat=True))
    count = 0
    with versions_evaluated(against):
        policy = policy_effective()
        for item in GoldItem.objects.filter(pk__in=item_ids).order_by("id"):
            if item.key in done_keys:
                continue
            if _result_store(run, item, _evaluate(item, prompt=prompt, policy=policy)):
                count += 1
            EvalRun.objects.filter(pk=run_id).update(
                items_done=EvalResult.objects.filter(run_id=run_id).count(),
                updated_at=timezone.now(),
            )
    _finish_if_complete(run_id)
    return count


def _evaluate(item: GoldItem, *, prompt: PromptTemplate, policy) -> dict:  # type: ignore[no-untyped-def]
    """The pipeline's composition for one item, as a result row's fields."""
    turns = tuple(Turn(role=t["role"], text=t["text"]) for t in item.conversation)
    started = time.perf_counter()
    try:
        composition = draft_compose(
            conversation=Conversation(
                message=item.question, earlier=turns, earlier_count=len(turns)
            ),
            prompt=prompt,
            policy=policy,
            use_cache=False,
        )
    except Exception as error:  # one bad item is a failed item, not a failed run
        logger.exception("eval item %s failed", item.pk)
        return {"error": repr(error)[:1000], "decision": "", "correct": False}
    articles = list(dict.fromkeys(hit["external_id"] for hit in composition.retrieved))
    expected = set(item.expected_articles)
    rank = next((i for i, a in enumerate(articles, 1) if a in expected), None)
    cited = composition.citations[0]["external_id"] if composition.citations else ""
    auto_sent = composition.decision == Decision.AUTO_SENT
    right_reply = not item.needs_person and cited in expected
    timings = dict(composition.stage_timings)
    timings.setdefault("total", round((time.perf_counter() - started) * 1000, 2))
    judgement = {}
    if composition.drafted and composition.body and judge_applies(drafting_model=composition.model):
        passages = [c.get("passage", "") for c in composition.citations or composition.retrieved]
        judgement = reply_judge(question=item.question, passages=passages, reply=composition.body)
    return {
        "classifier_version_id": composition.classifier_version_id,
        "intent": composition.intent,
        "intent_correct": (composition.intent == item.expected_intent)
        if item.expected_intent
        else None,
        "articles": articles[:10],
        "article_rank": rank,
        "cited_article": cited,
        "decision": composition.decision,
        "reason": composition.reason,
        "confidence": composition.confidence,
        "correct": right_reply if auto_sent else item.needs_person or not right_reply,
        "reply": composition.body,
        "model": composition.model,
        "judgement": judgement,
        "stage_timings": timings,
        "input_tokens": composition.input_tokens,
        "output_tokens": composition.output_tokens,
        "cost_usd": composition.cost_usd,
    }


def _result_store(run: EvalRun, item: GoldItem, fields: dict) -> bool:
    try:
        with transaction.atomic():
            EvalResult.objects.create(run=run, item=item, item_key=item.key, **fields)
    except IntegrityError:  # another delivery of the batch stored it first
        return False
    return True


def _finish_if_complete(run_id: int) -> None:
    with transaction.atomic():
        run = EvalRun.objects.select_for_update().get(pk=run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return
        results = list(run.results.select_related("item"))
        if len(results) < run.items_total:
            return
        run.metrics = run_metrics(results)
        run.items_done = len(results)
        run.status = RunStatus.SUCCEEDED
        run.finished_at = timezone.now()
        run.save(update_fields=["metrics", "items_done", "status", "finished_at", "updated_at"])


def eval_run_fail(*, run_id: int, error: str) -> None:
    EvalRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def eval_runs_sweep() -> dict[str, int]:
    """Runs whose progress stopped for EVAL_STALL_SECONDS: re-publish their missing items,
    or fail them after EVAL_MAX_DELIVERIES deliveries. Returns what it did."""
    stalled_before = timezone.now() - timedelta(seconds=settings.EVAL_STALL_SECONDS)
    outcome = {"republished": 0, "failed": 0}
    stalled = EvalRun.objects.filter(
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING], updated_at__lt=stalled_before
    )
    for run in stalled:
        if run.deliveries >= settings.EVAL_MAX_DELIVERIES:
            eval_run_fail(
                run_id=run.pk,
                error=f"stalled at {run.items_done}/{run.items_total} items after "
                f"{run.deliveries} deliveries: no worker finished its batches",
            )
            outcome["failed"] += 1
            continue
        EvalRun.objects.filter(pk=run.pk).update(
            deliveries=F("deliveries") + 1, updated_at=timezone.now()
        )
        eval_batches_publish(run_id=run.pk)
        outcome["republished"] += 1
    return outcome


def eval_run_wait(
    *,
    run_id: int,
    timeout: float,
    poll: float = 0.5,
    on_poll: Callable[[EvalRun], None] | None = None,
) -> EvalRun:
    """The run once it succeeded or failed, or as it is when `timeout` seconds passed;
    `on_poll(run)` sees it at each poll (progress)."""
    deadline = time.monotonic() + timeout
    while True:
        run = EvalRun.objects.get(pk=run_id)
        if on_poll is not None:
            on_poll(run)
        if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED) or time.monotonic() > deadline:
            return run
        time.sleep(poll)
