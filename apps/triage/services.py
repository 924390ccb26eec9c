"""Triage writes and workflows: intents and examples, training, activation, corrections.

Classification itself lives in `apps.triage.classification` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.exceptions import (
    ActivationRefusedError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from apps.core.gate import activation_gate
from apps.llm import embeddings as llm_embeddings
from apps.triage import classifier, selectors

# Classification is one of the app's services; re-exported so callers use `services`.
from apps.triage.classification import ClassificationResult as ClassificationResult
from apps.triage.classification import IntentProbability as IntentProbability
from apps.triage.classification import encoded
from apps.triage.classification import message_classify as message_classify
from apps.triage.classification import messages_classify as messages_classify
from apps.triage.classification import texts_intent_probabilities as texts_intent_probabilities
from apps.triage.classification import triage_warm as triage_warm
from apps.triage.csv_import import ImportReport, LabelledText, training_csv_read
from apps.triage.models import (
    ClassifierVersion,
    ExampleSource,
    HandoffPolicy,
    Intent,
    TrainingExample,
    TrainingSource,
    TrainingStatus,
)
from apps.triage.text import has_words, normalize_text

logger = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    version: ClassifierVersion
    report: ImportReport


def training_params() -> classifier.ClassifierParams:
    """The recipe new classifier versions are trained with (settings decide the options)."""
    shipped = classifier.WITH_ENCODER_TOKENS
    return replace(
        shipped,
        layer_weight=shipped.layer_weight if settings.TRIAGE_ENCODER_LAYER_BLOCK else 0.0,
        token_weight=shipped.token_weight if settings.TRIAGE_TOKEN_MATCH_BLOCK else 0.0,
    )


# --- intents and examples ------------------------------------------------------------------


def intents_ensure(*, names: list[str]) -> dict[str, Intent]:
    """The intents named, creating the missing ones (policy `auto`). Idempotent."""
    wanted = sorted(set(names))
    Intent.objects.bulk_create([Intent(name=name) for name in wanted], ignore_conflicts=True)
    return {intent.name: intent for intent in Intent.objects.filter(name__in=wanted)}


def training_examples_import(
    *, rows: list[LabelledText], source: ExampleSource = ExampleSource.IMPORT
) -> int:
    """Store labelled rows as examples, creating missing intents; rows already stored (same
    normalised text and intent) are left as they are. Returns how many rows were new."""
    intents = intents_ensure(names=[row.intent for row in rows])
    before = TrainingExample.objects.count()
    TrainingExample.objects.bulk_create(
        [
            TrainingExample(
                text=row.text,
                normalized_text=normalize_text(row.text),
                intent=intents[row.intent],
                source=source,
            )
            for row in rows
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )
    return TrainingExample.objects.count() - before


def training_example_record_correction(
    *,
    text: str,
    intent_name: str,
    source: ExampleSource = ExampleSource.AGENT_CORRECTION,
) -> TrainingExample:
    """Record that `text` means `intent_name` (an agent changed a ticket's intent).

    Idempotent: the same text and intent twice is one example. The intent must exist.
    The next training from the database uses it and prefers it over older labels.
    """
    text = text.strip()[: settings.TRIAGE_MAX_EXAMPLE_CHARS]
    if not has_words(text):
        raise ValidationError("a training example needs words (letters or digits)", field="text")
    intent = Intent.objects.filter(name=intent_name).first()
    if intent is None:
        raise NotFoundError(f"no intent named {intent_name!r}", field="intent_name")
    example, created = TrainingExample.objects.get_or_create(
        normalized_text=normalize_text(text),
        intent=intent,
        defaults={"text": text, "source": source},
    )
    if not created and source == ExampleSource.AGENT_CORRECTION:
        # Re-labelled by an agent again: make it count as a fresh correction.
        example.delete()
        example = TrainingExample.objects.create(
            text=text, normalized_text=normalize_text(text), intent=intent, source=source
        )
    return example


# --- training ------------------------------------------------------------------------------


def _examples_sha256(rows: list[LabelledText]) -> str:
    digest = hashlib.sha256()
    for normalized, intent in sorted((normalize_text(row.text), row.intent) for row in rows):
        digest.update(f"{intent}\t{normalized}\n".encode())
    return digest.hexdigest()


def _drop_small_intents(rows: list[LabelledText], report: ImportReport) -> list[LabelledText]:
    minimum = settings.TRIAGE_MIN_EXAMPLES_PER_INTENT
    counts = Counter(row.intent for row in rows)
    small = {name: count for name, count in counts.items() if count < minimum}
    for name, count in small.items():
        report.skipped_intents[name] = (
            f"{count} example{'s' if count != 1 else ''}, at least {minimum} needed: "
            "add examples for it or leave it out"
        )
    kept = [row for row in rows if row.intent not in small]
    remaining = len(counts) - len(small)
    if remaining < 2:
        raise ValidationError(
            f"training needs at least 2 intents with {minimum} or more examples each; "
            f"this data has {remaining} (of {len(counts)} intents). Add examples per intent."
        )
    return kept


def classifier_version_start(
    *, training_source: TrainingSource, source_detail: str = ""
) -> ClassifierVersion:
    """A pending version row: it records a training run even if the run fails."""
    params = training_params()
    return ClassifierVersion.objects.create(
        training_source=training_source,
        source_detail=source_detail[:500],
        method=params.method,
        params=params.as_json(),
        embedding_model=llm_embeddings.model_name(),
    )


def classifier_version_train(
    *,
    version: ClassifierVersion,
    rows: list[LabelledText],
    report: ImportReport,
    examples_max_id: int = 0,
    activate: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> ClassifierVersion:
    """Train `version` (pending) on `rows`: cross-validate, calibrate, fit, store;
    `on_step(name)` as each phase starts.

    Idempotent per version: only a pending version is trained (compare-and-set), so a
    redelivered task does nothing. On any failure the version is marked failed with the
    error and the active version is untouched; the error is raised again.
    """
    claimed = ClassifierVersion.objects.filter(id=version.id, status=TrainingStatus.PENDING).update(
        status=TrainingStatus.TRAINING, training_started_at=timezone.now()
    )
    if claimed != 1:
        raise ConflictError(f"classifier version {version.id} is not pending")
    started = time.monotonic()
    step = on_step or (lambda name: None)
    try:
        kept = _drop_small_intents(rows, report)
        intents = sorted({row.intent for row in kept})
        texts = [row.text for row in kept]
        # The recipe recorded when the version was created (perhaps in another process).
        params = classifier.ClassifierParams.from_json(version.params or {})
        step(f"encoding {len(texts)} examples")
        reading = encoded(texts, params)
        step(f"cross-validating and fitting {len(intents)} intents")
        outcome = classifier.train(
            texts=texts,
            embeddings=reading.embeddings,
            layer_embeddings=reading.layers,
            tokens=reading.tokens,
            params=params,
            labels=[row.intent for row in kept],
            intents=intents,
            jobs=settings.TRIAGE_TRAINING_JOBS,
        )
        artifact = outcome.model.to_bytes()
        step("storing the version")
    except Exception as error:
        message = error.message if isinstance(error, ValidationError) else repr(error)
        ClassifierVersion.objects.filter(id=version.id).update(
            status=TrainingStatus.FAILED,
            error=message[:5000],
            training_report=report.as_json(),
            finished_at=timezone.now(),
            training_seconds=time.monotonic() - started,
        )
        logger.warning("classifier version %s failed: %s", version.id, message)
        raise
    # One transaction: nobody sees the version ready but not yet active when asked for both;
    # except when the regression gate must measure it first against a live version (it is
    # then ready, and inactive while the gate's runs take).
    gated = (
        activation_gate() is not None and ClassifierVersion.objects.filter(is_active=True).exists()
    )
    with transaction.atomic():
        # Only from training: a run the reclaim marked failed (it took too long) stays failed.
        finished = ClassifierVersion.objects.filter(
            id=version.id, status=TrainingStatus.TRAINING
        ).update(
            status=TrainingStatus.READY,
            example_count=len(kept),
            intent_count=len(intents),
            examples_max_id=examples_max_id,
            examples_sha256=_examples_sha256(kept),
            metrics=outcome.metrics,
            training_report=report.as_json(),
            artifact=artifact,
            artifact_bytes=len(artifact),
            finished_at=timezone.now(),
            training_seconds=round(time.monotonic() - started, 2),
        )
        if activate and finished and not gated:
            _classifier_version_activate(version.id)
    if activate and finished and gated:
        # The gate measures the version on the gold sets: it must be stored ready first.
        try:
            classifier_version_activate(version_id=version.id)
        except ActivationRefusedError as error:
            report.notes.append(f"not activated: {error.message}")
            ClassifierVersion.objects.filter(id=version.id).update(training_report=report.as_json())
    try:
        classifier_versions_retire(spare=version.id)
    except Exception:  # the version is trained and stored: this must not report it failed
        logger.exception("retiring old classifier versions failed; they keep their artifacts")
    version.refresh_from_db()
    return version


def classifier_versions_retire(*, keep: int | None = None, spare: int | None = None) -> int:
    """Remove the artifacts of ready, inactive versions other than the `keep` most recent ones
    (TRIAGE_KEEP_ARTIFACTS; 0 keeps them all), marking them retired; returns how many.

    Recent: last activated, else finished. Always kept besides: the version a rollback would
    go to (the inactive one activated last) and `spare` (the version just trained, which may
    wait for review before it is activated). The active version is never touched, nor are a
    retired version's recipe, metrics and report. An artifact is tens of MB per version.
    """
    keep = settings.TRIAGE_KEEP_ARTIFACTS if keep is None else keep
    if keep <= 0:
        return 0
    with transaction.atomic():
        # Locked, so an activation or a rollback waits for us, or we for it (and then skip
        # the row it activated: the lock re-reads it).
        inactive = list(
            ClassifierVersion.objects.select_for_update()
            .filter(status=TrainingStatus.READY, is_active=False)
            .order_by(Coalesce("activated_at", "finished_at").desc(nulls_last=True), "-id")
            .values_list("id", "activated_at")
        )
        activated = [(when, version_id) for version_id, when in inactive if when is not None]
        rollback_target = max(activated)[1] if activated else None
        past = [
            version_id
            for version_id, _ in inactive[keep:]
            if version_id not in (rollback_target, spare)
        ]
        if not past:
            return 0
        retired = ClassifierVersion.objects.filter(id__in=past).update(
            status=TrainingStatus.RETIRED, artifact=None, artifact_bytes=0
        )
    logger.info("retired %s classifier versions (keeping %s inactive artifacts)", retired, keep)
    return retired


def classifier_versions_reclaim(*, stale_after_seconds: float | None = None) -> int:
    """Mark failed the versions left pending, or training, far longer than any training takes
    (the worker died, the task was lost), saying so; returns how many. The active version
    is never touched. A run that still finishes later cannot turn a reclaimed one ready."""
    after = (
        settings.TRIAGE_TRAINING_STALE_SECONDS
        if stale_after_seconds is None
        else stale_after_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=after)
    # Pending since long ago (the task never ran), or training since long ago (a version may
    # wait in a busy queue first: its training time counts from when it started).
    return ClassifierVersion.objects.filter(
        Q(status=TrainingStatus.PENDING, created_at__lt=cutoff)
        | Q(status=TrainingStatus.TRAINING, training_started_at__lt=cutoff)
    ).update(
        status=TrainingStatus.FAILED,
        error=(
            f"training did not finish within {after / 60:.0f} minutes (its worker was lost or "
            "the task never ran); the active version is unchanged: train again"
        ),
        finished_at=timezone.now(),
    )


def classifier_train_from_csv(
    *, path: Path, activate: bool = False, on_step: Callable[[str], None] | None = None
) -> TrainingResult:
    """Import the CSV's rows as examples (creating missing intents) and train on them.

    A file that cannot be used raises ValidationError before anything is stored.
    """
    parsed = training_csv_read(path=path)
    if not parsed.rows:
        raise ValidationError(
            f"no usable rows in {path.name}: every row was skipped\n{parsed.report.as_text()}",
            field="file",
        )
    created = training_examples_import(rows=parsed.rows)
    parsed.report.notes.append(f"{created} new training examples stored")
    version = classifier_version_start(training_source=TrainingSource.CSV, source_detail=str(path))
    # examples_max_id stays 0: a CSV run includes none of the agents' corrections.
    version = classifier_version_train(
        version=version, rows=parsed.rows, report=parsed.report, activate=activate,
        on_step=on_step,
    )  # fmt: skip
    return TrainingResult(version=version, report=parsed.report)


def classifier_train_from_database(*, version_id: int, activate: bool = False) -> None:
    """Train a pending version on every stored example, agents' corrections included.

    Idempotent: a version that is gone or no longer pending is left alone.
    """
    version = ClassifierVersion.objects.filter(id=version_id).first()
    if version is None or version.status != TrainingStatus.PENDING:
        return
    rows, highest = selectors.training_rows_from_database()
    report = ImportReport(rows_read=len(rows))
    try:
        classifier_version_train(
            version=version, rows=rows, report=report, examples_max_id=highest, activate=activate
        )
    except ValidationError:
        return  # recorded on the version; retrying cannot help


def classifier_version_queue_training(*, activate: bool = False) -> ClassifierVersion:
    """Create a pending version and schedule its training on the `ingest` queue."""
    from apps.triage.tasks import classifier_train_from_database_task

    version = classifier_version_start(
        training_source=TrainingSource.DATABASE, source_detail="training examples"
    )
    transaction.on_commit(
        lambda: classifier_train_from_database_task.apply_async(
            kwargs={"version_id": version.id, "activate": activate}, queue="ingest"
        )
    )
    return version


def classifier_retrain_if_due() -> ClassifierVersion | None:
    """Queue a training on every stored example, to be activated through the regression
    gate, once TRIAGE_RETRAIN_AFTER_CORRECTIONS agents' intent corrections arrived after
    the newest examples any version was trained on; None when not due (or one is already
    pending or training). A version the gate refused still counts as trained on them, so a
    refusal does not retrain in a loop."""
    due_after = settings.TRIAGE_RETRAIN_AFTER_CORRECTIONS
    if not due_after:
        return None
    busy = [TrainingStatus.PENDING, TrainingStatus.TRAINING]
    if ClassifierVersion.objects.filter(status__in=busy).exists():
        return None
    seen = ClassifierVersion.objects.aggregate(seen=Max("examples_max_id"))["seen"] or 0
    corrections = TrainingExample.objects.filter(
        source=ExampleSource.AGENT_CORRECTION, id__gt=seen
    ).count()
    if corrections < due_after:
        return None
    logger.info("%s intent corrections since the last training: retraining", corrections)
    return classifier_version_queue_training(activate=True)


# --- activation ----------------------------------------------------------------------------


def classifier_version_activate(
    *,
    version_id: int,
    gated: bool = True,
    override_reason: str = "",
    requested_by: str = "",
) -> ClassifierVersion:
    """Make this ready version the active one, once the regression gate found it not worse
    than the active one on the gold sets (ActivationRefusedError names the metrics; an
    `override_reason` activates it anyway, and the gate's record keeps the reason).
    `gated=False` skips the gate: a rollback to a version that was live before."""
    gate = activation_gate() if gated else None
    if gate is not None:
        current = ClassifierVersion.objects.filter(id=version_id).first()
        # Nothing to compare with while no version is live (a fresh install's first one).
        live = ClassifierVersion.objects.filter(is_active=True).exists()
        if live and current and current.status == TrainingStatus.READY and not current.is_active:
            gate(
                kind="classifier",
                version=version_id,
                override_reason=override_reason,
                requested_by=requested_by,
            )
    return _classifier_version_activate(version_id)


@transaction.atomic
def _classifier_version_activate(version_id: int) -> ClassifierVersion:
    version = ClassifierVersion.objects.select_for_update().filter(id=version_id).first()
    if version is None:
        raise NotFoundError(f"no classifier version {version_id}")
    if version.status == TrainingStatus.RETIRED:
        raise ConflictError(
            f"classifier version {version_id} is retired: its artifact was removed to save "
            f"space (TRIAGE_KEEP_ARTIFACTS={settings.TRIAGE_KEEP_ARTIFACTS}); train a new "
            "version instead"
        )
    if version.status != TrainingStatus.READY:
        raise ConflictError(
            f"classifier version {version_id} is {version.status}; only a ready one can be "
            "activated"
        )
    ClassifierVersion.objects.filter(is_active=True).exclude(id=version_id).update(is_active=False)
    ClassifierVersion.objects.filter(id=version_id).update(
        is_active=True, activated_at=timezone.now()
    )
    version.refresh_from_db()
    return version


def classifier_version_rollback() -> ClassifierVersion:
    """Re-activate the ready version that was active before the current one."""
    current = selectors.classifier_version_active()
    candidates = ClassifierVersion.objects.filter(
        status=TrainingStatus.READY, activated_at__isnull=False
    )
    if current is not None:
        candidates = candidates.exclude(id=current.id)
    previous = candidates.order_by("-activated_at").first()
    if previous is None:
        raise ConflictError("no earlier classifier version to roll back to")
    return classifier_version_activate(version_id=previous.id, gated=False)


def intent_upsert(*, name: str, description: str = "", handoff_policy: str = "auto") -> Intent:
    """Create or update an intent's description and handoff policy (demo setup, imports)."""
    if handoff_policy not in HandoffPolicy.values:
        raise ValidationError(
            f"handoff policy must be one of {', '.join(HandoffPolicy.values)}",
            field="handoff_policy",
        )
    intent, _ = Intent.objects.update_or_create(
        name=name, defaults={"description": description, "handoff_policy": handoff_policy}
    )
    return intent


def training_examples_erase(*, texts: Sequence[str], example_ids: Sequence[int] = ()) -> int:
    """Delete the examples recorded from a customer's words: those by id (agents'
    corrections point at theirs), and any not imported whose text is one of `texts`."""
    normalized = {
        normalize_text(text.strip()[: settings.TRIAGE_MAX_EXAMPLE_CHARS]) for text in texts
    }
    deleted, _ = (
        TrainingExample.objects.filter(
            Q(pk__in=example_ids)
            | (Q(normalized_text__in=normalized) & ~Q(source=ExampleSource.IMPORT))
        )
    ).delete()
    return deleted
