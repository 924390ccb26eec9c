"""Reads of triage data: the active classifier, training rows, waiting corrections."""

from __future__ import annotations

from django.db.models import Count, Max

from apps.triage.csv_import import LabelledText
from apps.triage.models import ClassifierVersion, ExampleSource, Intent, TrainingExample


def classifier_version_active_id() -> int | None:
    """The active version's id: one indexed query, cheap enough to run per request."""
    return ClassifierVersion.objects.filter(is_active=True).values_list("id", flat=True).first()


def classifier_version_active() -> ClassifierVersion | None:
    return ClassifierVersion.objects.filter(is_active=True).defer("artifact").first()


def classifier_artifact(*, version_id: int) -> bytes | None:
    data = (
        ClassifierVersion.objects.filter(id=version_id, artifact__isnull=False)
        .values_list("artifact", flat=True)
        .first()
    )
    return None if data is None else bytes(data)


def training_example_max_id() -> int:
    return TrainingExample.objects.aggregate(highest=Max("id"))["highest"] or 0


def corrections_waiting_count() -> int:
    """Agent corrections that the active classifier was not trained on (all of them when no
    version is active, or when the active one was trained from a CSV file)."""
    active = ClassifierVersion.objects.filter(is_active=True).values("examples_max_id").first()
    since = active["examples_max_id"] if active else 0
    return TrainingExample.objects.filter(
        source=ExampleSource.AGENT_CORRECTION, id__gt=since
    ).count()


def training_rows_from_database() -> tuple[list[LabelledText], int]:
    """Every example as (text, intent) and the highest example id among them.

    When agents corrected a text, their latest correction is the label for that text and
    other labels of the same text are left out: the correction is the newer judgement.
    """
    records = TrainingExample.objects.order_by("id").values_list(
        "id", "text", "normalized_text", "intent__name", "source"
    )
    corrected: dict[str, tuple[str, str]] = {}
    plain: list[tuple[str, str, str]] = []
    highest = 0
    for example_id, text, normalized, intent, source in records.iterator(chunk_size=5000):
        highest = max(highest, example_id)
        if source == ExampleSource.AGENT_CORRECTION:
            corrected[normalized] = (text, intent)  # ordered by id: the latest one wins
        else:
            plain.append((normalized, text, intent))
    rows = [LabelledText(text=t, intent=i) for n, t, i in plain if n not in corrected]
    rows.extend(LabelledText(text=t, intent=i) for t, i in corrected.values())
    return rows, highest


def intent_policies(*, names: list[str]) -> dict[str, str]:
    return dict(Intent.objects.filter(name__in=names).values_list("name", "handoff_policy"))


def intent_example_counts() -> dict[str, int]:
    return dict(
        Intent.objects.annotate(examples_total=Count("examples")).values_list(
            "name", "examples_total"
        )
    )


def training_texts_sample(*, per_intent: int) -> dict[str, list[str]]:
    """Up to `per_intent` example texts of each intent, spread evenly over its examples in
    id order (deterministic), for callers that need a picture of what an intent looks like."""
    texts: dict[str, list[str]] = {}
    for intent, text in (
        TrainingExample.objects.order_by("id").values_list("intent__name", "text").iterator()
    ):
        texts.setdefault(intent, []).append(text)
    sample = {}
    for intent, all_texts in texts.items():
        step = max(1, len(all_texts) / per_intent)
        sample[intent] = [
            all_texts[int(index * step)] for index in range(min(per_intent, len(all_texts)))
        ]
    return sample
