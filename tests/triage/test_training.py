from datetime import timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from apps.core.exceptions import ConflictError, NotFoundError, ValidationError
from apps.triage import services
from apps.triage.classifier import IntentModel
from apps.triage.csv_import import LabelledText
from apps.triage.models import (
    ClassifierVersion,
    ExampleSource,
    HandoffPolicy,
    Intent,
    TrainingExample,
    TrainingSource,
    TrainingStatus,
)
from apps.triage.selectors import corrections_waiting_count, training_rows_from_database
from apps.triage.services import (
    classifier_train_from_csv,
    classifier_train_from_database,
    classifier_version_activate,
    classifier_version_queue_training,
    classifier_version_rollback,
    classifier_version_start,
    classifier_versions_reclaim,
    classifier_versions_retire,
    message_classify,
    training_example_record_correction,
    training_examples_import,
)
from tests.conftest import wait_for
from tests.triage.data import INTENT_NAMES, csv_bytes, synthetic_rows

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_training_from_csv_stores_a_ready_version_with_cross_validated_metrics(synthetic_csv):
    # when
    result = classifier_train_from_csv(path=synthetic_csv)
    # then
    version = result.version
    assert version.status == TrainingStatus.READY
    assert version.is_active is False
    assert (version.example_count, version.intent_count) == (150, 5)
    assert len(version.examples_sha256) == 64
    assert version.artifact_bytes == len(version.artifact) > 0
    metrics = version.metrics
    assert metrics["examples"] == 150
    assert metrics["folds"] == 5
    assert sorted(metrics["per_intent"]) == INTENT_NAMES
    assert set(metrics["per_intent"]["card_lost"]) == {"precision", "recall", "f1", "support"}
    assert metrics["accuracy"] >= 0.9
    assert 0 <= metrics["ece"] <= 0.1
    assert isinstance(metrics["most_confused"], list)
    # the rows became examples and the intents were created
    assert sorted(Intent.objects.values_list("name", flat=True)) == INTENT_NAMES
    assert TrainingExample.objects.filter(source=ExampleSource.IMPORT).count() == 150


def test_the_encoder_blocks_train_a_classifier_that_reads_layer_4_and_matches_tokens(
    synthetic_csv, settings
):
    # given
    settings.TRIAGE_ENCODER_LAYER_BLOCK = True
    settings.TRIAGE_TOKEN_MATCH_BLOCK = True
    # when
    version = classifier_train_from_csv(path=synthetic_csv).version
    # then: the version says so, and the stored classifier reads layer 4 when it classifies
    assert version.method.startswith("minilm+layer4+")
    assert version.method.endswith("+class-neighbours+token-match/linear-svc/temperature+isotonic")
    assert (version.params["encoder_layer"], version.params["layer_weight"]) == (4, 2.0)
    assert version.params["token_weight"] == 2.0
    model = IntentModel.from_bytes(bytes(version.artifact))
    assert model.params.layer_weight == 2.0
    lexical = len(model.svm.word.vocabulary_) + len(model.svm.char.vocabulary_)
    assert model.svm.coef.shape[1] == 2 * 384 + lexical  # the sentence and layer blocks
    # ...and the class-neighbour block: one column per intent, over every example
    assert model.svm.neighbour_coef is not None
    assert model.svm.neighbour_coef.shape == (len(INTENT_NAMES), len(INTENT_NAMES))
    assert model.svm.neighbour_counts is not None and model.svm.neighbour_counts.sum() == 150
    # ...and the token-match block: every example's token states, projected on 128 axes
    bank = model.svm.token_bank
    assert bank is not None and len(bank.offsets) == 151
    assert bank.vectors.shape == (bank.offsets[-1], 128) and bank.vectors.dtype == np.float16
    assert model.svm.token_coef is not None
    assert model.svm.token_coef.shape == (len(INTENT_NAMES), len(INTENT_NAMES))
    assert model.format == 5
    # ...with its passage reader, cross-validated on the same folds
    assert model.reader is not None
    assert model.reader.svm.coef.shape[1] == 384 + lexical  # the sentence block alone
    assert model.reader.svm.landmark_embeddings is None
    assert model.reader.svm.neighbour_coef is None
    assert model.reader.svm.token_bank is None
    assert version.metrics["passage_reader"]["accuracy"] >= 0.9
    classifier_version_activate(version_id=version.id)
    result = message_classify(text="Help, somebody took my card from my bag yesterday")
    assert (result.classifier_version_id, result.intent) == (version.id, "card_lost")


def test_with_the_encoder_blocks_turned_off_training_leaves_them_and_the_reader_out(
    synthetic_csv, settings
):
    # given
    settings.TRIAGE_ENCODER_LAYER_BLOCK = False
    settings.TRIAGE_TOKEN_MATCH_BLOCK = False
    # when
    version = classifier_train_from_csv(path=synthetic_csv).version
    # then: the recipe without the block, and no passage reader
    assert (
        version.method == "minilm+tfidf-word-char+class-neighbours/linear-svc/temperature+isotonic"
    )
    assert (version.params["layer_weight"], version.params["token_weight"]) == (0.0, 0.0)
    model = IntentModel.from_bytes(bytes(version.artifact))
    assert (model.format, model.reader, model.svm.token_bank) == (4, None, None)
    assert "passage_reader" not in version.metrics


def test_the_token_match_block_alone_trains_with_a_passage_reader(synthetic_csv, settings):
    # given: the layer block off, the token-match block on
    settings.TRIAGE_ENCODER_LAYER_BLOCK = False
    settings.TRIAGE_TOKEN_MATCH_BLOCK = True
    # when
    version = classifier_train_from_csv(path=synthetic_csv).version
    classifier_version_activate(version_id=version.id)
    # then: it matches tokens without the layer block, and reads passages without either
    assert version.method == (
        "minilm+tfidf-word-char+class-neighbours+token-match/linear-svc/temperature+isotonic"
    )
    model = IntentModel.from_bytes(bytes(version.artifact))
    assert model.format == 5 and model.svm.token_bank is not None
    assert model.reader is not None and model.reader.svm.token_bank is None
    result = message_classify(text="Help, somebody took my card from my bag yesterday")
    assert (result.classifier_version_id, result.intent) == (version.id, "card_lost")


def test_importing_the_same_rows_twice_stores_each_example_once():
    # given
    rows = [LabelledText(text=text, intent=intent) for text, intent in synthetic_rows()]
    assert training_examples_import(rows=rows) == 150
    # when
    created = training_examples_import(rows=rows)
    # then
    assert created == 0
    assert TrainingExample.objects.count() == 150


def test_an_intent_with_too_few_examples_is_skipped_and_reported(tmp_path: Path):
    # given
    path = tmp_path / "data.csv"
    path.write_bytes(csv_bytes([*synthetic_rows(), ("what a lovely bank", "compliment")]))
    # when
    result = classifier_train_from_csv(path=path)
    # then
    assert result.report.skipped_intents == {
        "compliment": "1 example, at least 5 needed: add examples for it or leave it out"
    }
    assert result.version.intent_count == 5
    assert "compliment" not in result.version.metrics["per_intent"]


def test_a_failed_training_is_recorded_and_keeps_the_active_version(
    active_classifier, tmp_path: Path
):
    # given: a file with a single usable intent
    path = tmp_path / "one.csv"
    path.write_bytes(csv_bytes([(f"card lost number {i}", "card_lost") for i in range(10)]))
    # when
    with pytest.raises(ValidationError) as refused:
        classifier_train_from_csv(path=path, activate=True)
    # then
    assert refused.value.message == (
        "training needs at least 2 intents with 5 or more examples each; this data has 1 "
        "(of 1 intents). Add examples per intent."
    )
    failed = ClassifierVersion.objects.exclude(id=active_classifier.id).get()
    assert failed.status == TrainingStatus.FAILED
    assert failed.error == refused.value.message
    assert failed.is_active is False
    assert ClassifierVersion.objects.get(is_active=True).id == active_classifier.id


def test_the_command_trains_reports_and_activates(synthetic_csv):
    # given
    output = StringIO()
    # when
    call_command("triage_train", str(synthetic_csv), "--activate", stdout=output)
    # then
    version = ClassifierVersion.objects.get()
    assert version.is_active is True
    text = output.getvalue()
    assert "rows read: 150, skipped: 0" in text
    assert f"classifier version {version.id}: 150 examples, 5 intents" in text
    assert "accuracy" in text and "macro-F1" in text and "ECE" in text
    assert f"version {version.id} is now active" in text


def test_the_command_refuses_a_file_without_the_category_column(tmp_path: Path):
    # given
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nmy card is lost,card_lost\n")
    # when
    with pytest.raises(CommandError) as refused:
        call_command("triage_train", str(path), stdout=StringIO())
    # then: refused before anything was stored
    assert str(refused.value).startswith("training refused: missing column 'category'")
    assert ClassifierVersion.objects.count() == 0
    assert TrainingExample.objects.count() == 0


def test_activation_and_rollback_switch_the_single_active_version(make_ready_version):
    # given: two ready versions, the second one activated after the first
    first = make_ready_version(activate=True)
    second = make_ready_version(activate=True)
    assert list(ClassifierVersion.objects.filter(is_active=True).values_list("id", flat=True)) == [
        second.id
    ]
    # when
    back = classifier_version_rollback()
    # then
    assert back.id == first.id
    assert list(ClassifierVersion.objects.filter(is_active=True).values_list("id", flat=True)) == [
        first.id
    ]
    # and activating the second again is the same one action
    classifier_version_activate(version_id=second.id)
    assert ClassifierVersion.objects.get(is_active=True).id == second.id


def test_the_database_refuses_two_active_versions(active_classifier):
    # given
    other = classifier_version_start(training_source=TrainingSource.CSV)
    ClassifierVersion.objects.filter(id=other.id).update(status=TrainingStatus.READY, artifact=b"x")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        ClassifierVersion.objects.filter(id=other.id).update(is_active=True)


def test_a_version_that_is_not_ready_cannot_be_activated(active_classifier):
    # given
    pending = classifier_version_start(training_source=TrainingSource.DATABASE)
    # when
    with pytest.raises(ConflictError):
        classifier_version_activate(version_id=pending.id)
    # then
    assert ClassifierVersion.objects.get(is_active=True).id == active_classifier.id


def test_corrections_are_counted_until_a_database_training_uses_them(active_classifier):
    # given: an agent says a delivery-looking text is about a lost card
    training_example_record_correction(
        text="my parcel with the new card never came, I think it was stolen",
        intent_name="card_lost",
    )
    assert corrections_waiting_count() == 1
    version = classifier_version_start(training_source=TrainingSource.DATABASE)
    # when
    classifier_train_from_database(version_id=version.id, activate=True)
    # then
    version.refresh_from_db()
    assert version.status == TrainingStatus.READY
    assert version.is_active is True
    assert version.example_count == 151
    assert corrections_waiting_count() == 0


def test_a_correction_to_an_unknown_intent_is_refused():
    # when
    with pytest.raises(NotFoundError) as refused:
        training_example_record_correction(text="hello", intent_name="nope")
    # then
    assert refused.value.message == "no intent named 'nope'"
    assert TrainingExample.objects.count() == 0


def test_the_latest_correction_wins_over_the_imported_label():
    # given: an imported text, re-labelled by an agent
    training_examples_import(rows=[LabelledText(text=t, intent=i) for t, i in synthetic_rows()])
    training_example_record_correction(text="where is my card", intent_name="card_lost")
    training_example_record_correction(text="Where is my card", intent_name="delivery_status")
    # when
    rows, _ = training_rows_from_database()
    # then
    labels = [row.intent for row in rows if row.text.lower() == "where is my card"]
    assert labels == ["delivery_status"]


def test_a_policy_is_kept_when_importing_again():
    # given
    rows = [LabelledText(text=text, intent=intent) for text, intent in synthetic_rows()]
    training_examples_import(rows=rows)
    Intent.objects.filter(name="card_lost").update(handoff_policy=HandoffPolicy.ALWAYS_HUMAN)
    # when
    training_examples_import(rows=rows)
    # then
    assert Intent.objects.get(name="card_lost").handoff_policy == HandoffPolicy.ALWAYS_HUMAN


@pytest.mark.django_db(transaction=True)
def test_a_queued_training_runs_in_a_real_worker_and_activates(celery_worker_process, tmp_path):
    # given: examples in the database, no version
    from apps.triage.csv_import import LabelledText
    from apps.triage.services import training_examples_import

    training_examples_import(rows=[LabelledText(text=t, intent=i) for t, i in synthetic_rows()])
    # when
    with transaction.atomic():
        version = classifier_version_queue_training(activate=True)
    # then
    done = wait_for(
        lambda: ClassifierVersion.objects.filter(
            id=version.id, status__in=[TrainingStatus.READY, TrainingStatus.FAILED]
        ).first(),
        timeout=120,
    )
    assert (done.status, done.error) == (TrainingStatus.READY, "")
    assert done.is_active is True
    assert done.example_count == 150


def test_versions_past_the_kept_ones_are_retired_but_never_the_rollback_target(
    make_ready_version,
):
    # given: four inactive ready versions and the active one
    now = timezone.now()
    once_active, rollback_target, trained_earlier, trained_lately = (
        make_ready_version() for _ in range(4)
    )
    ClassifierVersion.objects.filter(id=once_active.id).update(
        activated_at=now - timedelta(days=3), metrics={"accuracy": 0.91}
    )
    ClassifierVersion.objects.filter(id=rollback_target.id).update(
        activated_at=now - timedelta(days=1)
    )
    ClassifierVersion.objects.filter(id=trained_earlier.id).update(
        finished_at=now - timedelta(days=2)
    )
    ClassifierVersion.objects.filter(id=trained_lately.id).update(
        finished_at=now - timedelta(hours=1)
    )
    active = make_ready_version(activate=True)
    # when: room for one, and the version trained earlier spared (as if just trained)
    retired = classifier_versions_retire(keep=1, spare=trained_earlier.id)
    # then: the most recent (activated, else finished) keeps its artifact, and so do the
    # one a rollback goes to, though less recent, and the spared one
    assert retired == 1
    statuses = dict(ClassifierVersion.objects.values_list("id", "status"))
    assert statuses == {
        once_active.id: TrainingStatus.RETIRED,
        rollback_target.id: TrainingStatus.READY,
        trained_earlier.id: TrainingStatus.READY,
        trained_lately.id: TrainingStatus.READY,
        active.id: TrainingStatus.READY,
    }
    gone = ClassifierVersion.objects.get(id=once_active.id)
    assert (gone.artifact, gone.artifact_bytes, gone.metrics) == (None, 0, {"accuracy": 0.91})
    assert ClassifierVersion.objects.get(id=active.id).is_active is True
    # and unspared, the earlier one goes too; nothing more after that, nor with keep=0
    assert classifier_versions_retire(keep=1) == 1
    assert ClassifierVersion.objects.get(id=trained_earlier.id).status == TrainingStatus.RETIRED
    assert classifier_versions_retire(keep=1) == 0
    assert classifier_versions_retire(keep=0) == 0
    # and a retired version cannot come back, while a rollback finds the kept one
    with pytest.raises(ConflictError, match="is retired: its artifact was removed"):
        classifier_version_activate(version_id=once_active.id)
    assert classifier_version_rollback().id == rollback_target.id


def test_a_training_keeps_its_own_and_the_rollback_targets_artifacts_and_retires_others(
    make_ready_version, synthetic_csv, settings
):
    # given: the version a rollback goes to, a more recent one never activated, and room
    # for one
    settings.TRIAGE_KEEP_ARTIFACTS = 1
    now = timezone.now()
    rollback_target, trained_before = make_ready_version(), make_ready_version()
    ClassifierVersion.objects.filter(id=rollback_target.id).update(
        activated_at=now - timedelta(days=2)
    )
    ClassifierVersion.objects.filter(id=trained_before.id).update(
        finished_at=now - timedelta(days=1)
    )
    # when: a new version is trained (and not activated)
    new = classifier_train_from_csv(path=synthetic_csv).version
    # then
    assert (new.status, new.is_active) == (TrainingStatus.READY, False)
    assert new.artifact_bytes > 0
    statuses = dict(ClassifierVersion.objects.exclude(id=new.id).values_list("id", "status"))
    assert statuses == {
        rollback_target.id: TrainingStatus.READY,
        trained_before.id: TrainingStatus.RETIRED,
    }


def test_a_failure_to_retire_is_logged_and_the_training_still_succeeds(
    synthetic_csv, monkeypatch, caplog
):
    # given: retiring fails (the database dropped the connection, say)
    def retire_fails(**_: object) -> int:
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "classifier_versions_retire", retire_fails)
    # when
    new = classifier_train_from_csv(path=synthetic_csv, activate=True).version
    # then: the version is trained, stored and active; the failure is in the log
    assert (new.status, new.is_active, new.error) == (TrainingStatus.READY, True, "")
    assert "retiring old classifier versions failed" in caplog.text


def test_versions_whose_training_was_lost_are_failed_and_the_active_one_kept(active_classifier):
    # given: one version training for two hours (its worker died)
    lost = classifier_version_start(training_source=TrainingSource.DATABASE)
    running = classifier_version_start(training_source=TrainingSource.DATABASE)
    two_hours_ago = timezone.now() - timedelta(hours=2)
    ClassifierVersion.objects.filter(id=lost.id).update(
        status=TrainingStatus.TRAINING, created_at=two_hours_ago, training_started_at=two_hours_ago
    )
    # ...and one that waited two hours in a busy queue and started training just now
    ClassifierVersion.objects.filter(id=running.id).update(
        status=TrainingStatus.TRAINING,
        created_at=two_hours_ago,
        training_started_at=timezone.now(),
    )
    # when
    reclaimed = classifier_versions_reclaim(stale_after_seconds=3600)
    # then
    assert reclaimed == 1
    lost.refresh_from_db()
    assert lost.status == TrainingStatus.FAILED
    assert lost.error.startswith("training did not finish within 60 minutes")
    assert ClassifierVersion.objects.get(id=running.id).status == TrainingStatus.TRAINING
    assert ClassifierVersion.objects.get(is_active=True).id == active_classifier.id
    assert classifier_versions_reclaim(stale_after_seconds=3600) == 0


def test_enough_intent_corrections_queue_one_retraining(make_ready_version, settings):
    # given: an active version and a threshold of three corrections
    settings.TRIAGE_RETRAIN_AFTER_CORRECTIONS = 3
    make_ready_version(activate=True)
    texts = ["where is my parcel now", "my card got blocked today", "I cannot log in at all"]
    for text in texts[:2]:
        training_example_record_correction(text=text, intent_name=INTENT_NAMES[0])
    # then: two are not enough
    assert services.classifier_retrain_if_due() is None
    # when: the third arrives
    training_example_record_correction(text=texts[2], intent_name=INTENT_NAMES[0])
    version = services.classifier_retrain_if_due()
    # then: one training on the database is queued, and only one
    assert version is not None and version.status == TrainingStatus.PENDING
    assert version.training_source == TrainingSource.DATABASE
    assert services.classifier_retrain_if_due() is None
    # and with the threshold at 0 it never retrains on its own
    ClassifierVersion.objects.filter(pk=version.pk).update(status=TrainingStatus.FAILED)
    settings.TRIAGE_RETRAIN_AFTER_CORRECTIONS = 0
    assert services.classifier_retrain_if_due() is None
