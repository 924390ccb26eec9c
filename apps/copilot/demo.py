"""Demo setup: intents and policies, intent→article links, the classifier, the prompt and
the shipped calibration. Every step is idempotent."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from django.db import transaction

from apps.copilot.links import intent_links_learn_active
from apps.copilot.models import Calibration, IntentArticleLink, LinkSource
from apps.copilot.services import prompt_template_ensure_default
from apps.knowledge.selectors import articles_by_external_id
from apps.triage.selectors import classifier_version_active
from apps.triage.services import classifier_train_from_csv, intent_upsert


def intents_and_links_load(*, path: Path) -> tuple[int, int, list[str]]:
    """Intents (name, description, handoff_policy) and their admin links to articles.

    Returns (intents, links, missing article ids). Articles not imported are reported.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    wanted = {a for row in rows for a in (row.get("articles") or "").split()}
    articles = articles_by_external_id(external_ids=sorted(wanted))
    links = 0
    with transaction.atomic():
        for row in rows:
            intent_upsert(
                name=row["name"].strip(),
                description=(row.get("description") or "").strip(),
                handoff_policy=(row.get("handoff_policy") or "auto").strip(),
            )
            for external_id in (row.get("articles") or "").split():
                article = articles.get(external_id)
                if article is None:
                    continue
                _, created = IntentArticleLink.objects.get_or_create(
                    intent_name=row["name"].strip(),
                    article=article,
                    source=LinkSource.ADMIN,
                    defaults={"weight": 1.0},
                )
                links += created
    return len(rows), links, sorted(wanted - set(articles))


def classifier_ensure(*, path: Path) -> str:
    """Train and activate the classifier on `path` unless an active one was trained on it."""
    active = classifier_version_active()
    if active is not None and active.source_detail == str(path):
        return f"classifier version {active.id} already active"
    result = classifier_train_from_csv(path=path, activate=True)
    return f"classifier version {result.version.id} trained and activated"


def calibration_load(*, path: Path) -> str:
    """Store and activate the shipped calibration unless one is active already."""
    active = Calibration.objects.filter(is_active=True).first()
    if active is not None:
        return f"calibration v{active.version} already active"
    data = json.loads(path.read_text())
    with transaction.atomic():
        version = (
            Calibration.objects.order_by("-version").values_list("version", flat=True).first() or 0
        ) + 1
        calibration = Calibration.objects.create(
            version=version,
            weights=data["weights"],
            metrics=data.get("metrics", {}),
            auto_send_threshold=data.get("auto_send_threshold"),
            target_precision=data.get("target_precision"),
            gold_set=data.get("gold_set", ""),
            is_active=True,
        )
    return f"calibration v{calibration.version} loaded from {path}"


def demo_setup(*, intents: Path, train: Path, calibration: Path | None) -> list[str]:
    lines = []
    count, links, missing = intents_and_links_load(path=intents)
    lines.append(f"{count} intents, {links} new intent→article links")
    if missing:
        lines.append(f"articles not in the knowledge base (import it first): {', '.join(missing)}")
    lines.append(classifier_ensure(path=train))
    learning = intent_links_learn_active()
    if learning is not None:
        lines.append(
            f"{learning.links} intent→article links learned from {learning.examples} "
            f"training examples of {learning.intents} intents"
        )
    prompt = prompt_template_ensure_default()
    lines.append(f"draft prompt v{prompt.version} active")
    if calibration is not None and calibration.exists():
        lines.append(calibration_load(path=calibration))
    return lines
