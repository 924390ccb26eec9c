from __future__ import annotations

from pathlib import Path

import pytest

from apps.triage import classifier
from apps.triage.classification import encoded
from apps.triage.csv_import import LabelledText
from apps.triage.models import ClassifierVersion, TrainingSource, TrainingStatus
from apps.triage.services import (
    classifier_version_activate,
    training_examples_import,
    training_params,
)
from tests.triage.data import csv_bytes, synthetic_rows


@pytest.fixture
def synthetic_csv(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.csv"
    path.write_bytes(csv_bytes(synthetic_rows()))
    return path


@pytest.fixture(scope="session")
def synthetic_artifact() -> bytes:
    """The synthetic dataset's classifier, trained once per test process (the real training
    code, without the database), so tests about using a classifier need not train one."""
    rows = synthetic_rows()
    texts = [text for text, _ in rows]
    labels = [intent for _, intent in rows]
    params = training_params()  # the shipped recipe (TRIAGE_ENCODER_LAYER_BLOCK)
    reading = encoded(texts, params)
    outcome = classifier.train(
        texts=texts,
        params=params,
        embeddings=reading.embeddings,
        layer_embeddings=reading.layers,
        tokens=reading.tokens,
        labels=labels,
        intents=sorted(set(labels)),
    )
    return outcome.model.to_bytes()


@pytest.fixture
def make_ready_version(synthetic_artifact: bytes):  # type: ignore[no-untyped-def]
    """Store the synthetic dataset's examples and a ready version holding its artifact."""

    def make(*, activate: bool = False) -> ClassifierVersion:
        training_examples_import(
            rows=[LabelledText(text=text, intent=intent) for text, intent in synthetic_rows()]
        )
        version = ClassifierVersion.objects.create(
            training_source=TrainingSource.CSV,
            status=TrainingStatus.READY,
            method=classifier.IntentModel.from_bytes(synthetic_artifact).params.method,
            example_count=150,
            intent_count=5,
            artifact=synthetic_artifact,
            artifact_bytes=len(synthetic_artifact),
        )
        if activate:
            version = classifier_version_activate(version_id=version.id)
        return version

    return make


@pytest.fixture
def active_classifier(make_ready_version) -> ClassifierVersion:  # type: ignore[no-untyped-def]
    return make_ready_version(activate=True)
