"""The regression gate: a worse classifier is refused with the metric and its interval; an
equal one passes; an override needs a reason and is recorded."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command

from apps.core.exceptions import ActivationRefusedError, ValidationError
from apps.evaluation.gate import paired_checks
from apps.evaluation.goldsets import gold_set_import
from apps.evaluation.models import EvalRun, GateDecision, GoldSet
from apps.evaluation.runs import eval_batch_run, eval_run_create
from apps.triage import classifier
from apps.triage.classification import encoded
from apps.triage.models import ClassifierVersion, TrainingSource, TrainingStatus
from apps.triage.services import classifier_version_activate, training_params
from tests.copilot.conftest import DEMO, EXAMPLES_PER_INTENT, INTENTS

pytestmark = pytest.mark.slow
HELD_OUT = 3  # gold questions per intent, after the ones the tiny classifier learned


def _demo_rows(skip: int, take: int) -> list[tuple[str, str]]:
    counts: dict[str, int] = {}
    rows = []
    with (DEMO / "triage/train.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            intent = row["category"]
            if intent in INTENTS:
                counts[intent] = counts.get(intent, 0) + 1
                if skip < counts[intent] <= skip + take:
                    rows.append((row["text"], intent))
    return rows


@pytest.fixture
def gold(copilot_ready) -> GoldSet:  # type: ignore[no-untyped-def]
    items = [
        {
            "question": text,
            "expected_intent": intent,
            "expected_articles": [INTENTS[intent][1]] if INTENTS[intent][1] else [],
        }
        for text, intent in _demo_rows(EXAMPLES_PER_INTENT, HELD_OUT)
    ]
    gold_set, report = gold_set_import(text="\n".join(map(json.dumps, items)), name="held-out")
    assert report.errors == [] and report.added == HELD_OUT * len(INTENTS)
    return gold_set


def _version(rows: list[tuple[str, str]]) -> ClassifierVersion:
    """A trained, ready, inactive classifier version learned from `rows`."""
    texts, labels = [t for t, _ in rows], [i for _, i in rows]
    params = training_params()
    reading = encoded(texts, params)
    outcome = classifier.train(
        texts=texts, params=params, embeddings=reading.embeddings,
        layer_embeddings=reading.layers, tokens=reading.tokens, labels=labels,
        intents=sorted(set(labels)),
    )  # fmt: skip
    artifact = outcome.model.to_bytes()
    return ClassifierVersion.objects.create(
        training_source=TrainingSource.CSV, status=TrainingStatus.READY,
        method=outcome.model.params.method, example_count=len(rows),
        intent_count=len(set(labels)), artifact=artifact, artifact_bytes=len(artifact),
    )  # fmt: skip


def _mislabelled(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each intent's texts labelled as the next intent: a classifier that is surely worse."""
    names = sorted(INTENTS)
    return [(text, names[(names.index(intent) + 1) % len(names)]) for text, intent in rows]


def test_a_worse_classifier_is_refused_naming_the_metric_and_the_interval(gold):
    # given
    active = ClassifierVersion.objects.get(is_active=True)
    worse = _version(_mislabelled(_demo_rows(0, EXAMPLES_PER_INTENT)))
    # when
    with pytest.raises(ActivationRefusedError) as refused:
        classifier_version_activate(version_id=worse.pk, requested_by="lead")
    # then: the message names the metric, both values and the interval
    message = refused.value.message
    assert f"classifier version {worse.pk} is worse than the active one" in message
    assert "intent_accuracy on held-out:" in message and "95% interval [" in message
    assert "To activate it anyway, give a reason: manage.py triage_activate" in message
    # and the active version keeps answering; the decision is kept
    assert ClassifierVersion.objects.get(is_active=True) == active
    decision = GateDecision.objects.get()
    assert (decision.kind, decision.version, decision.passed) == ("classifier", worse.pk, False)
    checks = {c["metric"]: c for c in decision.checks}
    assert checks["intent_accuracy"]["worse"] and checks["intent_accuracy"][
        "items"
    ] == HELD_OUT * len(INTENTS)
    assert checks["intent_accuracy"]["high"] < 0
    # when: an admin overrides it with a reason
    classifier_version_activate(
        version_id=worse.pk, override_reason="hotfix for a new product line", requested_by="lead"
    )
    # then
    assert ClassifierVersion.objects.get(is_active=True) == worse
    latest = GateDecision.objects.order_by("-id").first()
    assert latest.overridden and latest.override_reason == "hotfix for a new product line"


def test_an_equally_good_classifier_passes_and_reuses_the_active_run(gold):
    # given: the same examples again (a retrain with nothing new)
    same = _version(_demo_rows(0, EXAMPLES_PER_INTENT))
    classifier_version_activate(version_id=_version(_demo_rows(0, EXAMPLES_PER_INTENT)).pk)
    runs_before = EvalRun.objects.count()
    # when
    activated = classifier_version_activate(version_id=same.pk)
    # then: passed; only the candidate was run (the active configuration's run was reused)
    assert activated.is_active
    assert GateDecision.objects.order_by("-id").first().passed
    assert EvalRun.objects.count() == runs_before + 1


def test_triage_train_activate_goes_through_the_gate(gold, tmp_path):
    # given: a handful of mislabelled examples per intent
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows(_mislabelled(_demo_rows(0, 5)))
    active = ClassifierVersion.objects.get(is_active=True)
    out = io.StringIO()
    # when
    call_command("triage_train", str(path), "--activate", stdout=out)
    # then: trained and kept, not activated, and the output says why
    printed = out.getvalue()
    assert "not activated: classifier version" in printed and "intent_accuracy" in printed
    assert ClassifierVersion.objects.get(is_active=True) == active


def test_runs_on_different_gold_sets_do_not_compare(gold):
    other, _ = gold_set_import(text=json.dumps({"question": "hello there"}), name="other")
    runs = []
    for gold_set in (gold, other):
        run = eval_run_create(gold_set=gold_set)
        eval_batch_run(run_id=run.pk, item_ids=list(gold_set.items.values_list("pk", flat=True)))
        run.refresh_from_db()
        runs.append(run)
    with pytest.raises(ValidationError, match="only runs on the same items compare"):
        paired_checks(candidate=runs[0], active=runs[1])


def test_a_calibration_that_sends_nothing_is_refused_and_a_new_prompt_is_gated(gold):
    from apps.copilot.calibration import calibration_activate
    from apps.copilot.confidence import DEFAULT_CALIBRATION
    from apps.copilot.models import Calibration
    from apps.copilot.services import prompt_template_publish

    # given: a calibration under which nothing is confident enough to be sent
    timid = Calibration.objects.create(
        version=5, weights={**DEFAULT_CALIBRATION, "bias": -50.0}, auto_send_threshold=0.99
    )
    # when / then
    with pytest.raises(ActivationRefusedError, match="calibration version 5 is worse") as refused:
        calibration_activate(calibration=timid)
    assert "decision_right on held-out" in refused.value.message
    assert not Calibration.objects.filter(is_active=True).exists()
    # when: a new draft prompt (the offline drafter does not read it: it measures the same)
    prompt = prompt_template_publish(body="Answer in one short paragraph.", requested_by="lead")
    # then: measured, passed, active
    assert prompt.is_active
    assert GateDecision.objects.filter(kind="prompt", version=prompt.version, passed=True).exists()
