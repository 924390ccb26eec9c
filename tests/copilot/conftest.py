"""Copilot fixtures: a tiny Fernhill knowledge base, a tiny classifier, the gateway isolated.

The classifier is trained once per test process on 10 demo examples per intent (the real
training code, without the database); each test stores it as the active version.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.copilot.models import IntentArticleLink, LinkSource
from apps.knowledge.imports import kb_import
from apps.knowledge.models import Article
from apps.llm.circuit import circuit_reset
from apps.llm.deployments import LOCAL_EXTRACTIVE, Deployment
from apps.llm.router import router_reset
from apps.safety.pii import analyzer_warm
from apps.tickets.models import Channel, Message, Ticket
from apps.tickets.services import Actor, customer_resolve, ticket_create
from apps.triage import classifier
from apps.triage.classification import encoded
from apps.triage.models import ClassifierVersion, TrainingSource, TrainingStatus
from apps.triage.services import classifier_version_activate, intent_upsert, training_params
from tests.llm.fake_openai import FakeOpenAI, RunningServer

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures/demo"
ALIASES = ("draft-fast", "draft-strong", "judge")
# intent → (handoff policy, article answering it)
INTENTS = {
    "reset_password": ("auto", "account/reset-password.md"),
    "refund_status": ("auto", "returns/refund-timing.md"),
    "track_order": ("auto", "shipping/tracking.md"),
    "charged_twice": ("auto", "billing/charged-twice.md"),
    "goodwill_request": ("review", "internal/goodwill-gestures.md"),
    "unauthorized_charge": ("always_human", ""),
}
EXAMPLES_PER_INTENT = 10


def _training_rows() -> list[tuple[str, str]]:
    counts: dict[str, int] = {}
    rows = []
    with (DEMO / "triage/train.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            intent = row["category"]
            if intent in INTENTS and counts.get(intent, 0) < EXAMPLES_PER_INTENT:
                counts[intent] = counts.get(intent, 0) + 1
                rows.append((row["text"], intent))
    return rows


@pytest.fixture(scope="session")
def tiny_classifier_artifact() -> bytes:
    rows = _training_rows()
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
def active_classifier(db, tiny_classifier_artifact: bytes) -> ClassifierVersion:  # type: ignore[no-untyped-def]
    for name, (policy, _) in INTENTS.items():
        intent_upsert(name=name, handoff_policy=policy)
    version = ClassifierVersion.objects.create(
        training_source=TrainingSource.CSV,
        status=TrainingStatus.READY,
        method=classifier.IntentModel.from_bytes(tiny_classifier_artifact).params.method,
        example_count=len(_training_rows()),
        intent_count=len(INTENTS),
        artifact=tiny_classifier_artifact,
        artifact_bytes=len(tiny_classifier_artifact),
    )
    return classifier_version_activate(version_id=version.id)


@pytest.fixture
def tiny_kb(db, tmp_path_factory) -> dict[str, Article]:  # type: ignore[no-untyped-def]
    """Five demo articles, and each intent linked to the article that answers it."""
    folder = tmp_path_factory.mktemp("kb")
    for _, article in INTENTS.values():
        if article:
            (folder / article).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(DEMO / "kb" / article, folder / article)
    kb_import(paths=[folder], source_name="demo-test")
    articles = {a.external_id: a for a in Article.objects.all()}
    for name, (_, external_id) in INTENTS.items():
        if external_id:
            IntentArticleLink.objects.create(
                intent_name=name, article=articles[external_id], source=LinkSource.ADMIN
            )
    return articles


@pytest.fixture
def copilot_ready(active_classifier, tiny_kb) -> dict[str, Article]:  # type: ignore[no-untyped-def]
    return tiny_kb


@pytest.fixture(scope="session", autouse=True)
def _pii_analyzer_warm() -> None:
    """The PII analyzer and its spaCy model loaded once, as a worker does at start
    (`pipeline_warm`): not inside the first test that drafts, whose timings it would swamp."""
    analyzer_warm()


@pytest.fixture(autouse=True)
def _isolated_gateway(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Offline drafter, no budgets, fresh Router and closed circuits for every test."""
    settings.LLM_DEPLOYMENTS = {alias: (Deployment(LOCAL_EXTRACTIVE),) for alias in ALIASES}
    settings.LLM_FALLBACKS = {"draft-fast": ("draft-strong",), "draft-strong": (), "judge": ()}
    # The first offline draft of a process imports litellm and warms up: not a timeout.
    settings.LLM_REQUEST_TIMEOUT = 30.0
    settings.LLM_NUM_RETRIES = 0
    settings.LLM_BUDGET_DAILY_USD = 0.0
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.LLM_BUDGET_TICKET_USD = 0.0
    settings.LLM_BUDGET_CUSTOMER_DAILY_USD = 0.0
    # Tests decide the thresholds they need; these make a clear answer auto-send.
    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.5
    settings.COPILOT_REVIEW_THRESHOLD = 0.1
    router_reset()
    circuit_reset(ALIASES)
    yield
    router_reset()
    circuit_reset(ALIASES)


def customer_ticket(
    body: str, *, channel: Channel = Channel.API, email: str = ""
) -> tuple[Ticket, Message]:
    """A ticket with one customer message, created without scheduling a worker task."""
    customer = customer_resolve(email=email or "ada@example.com", name="Ada")
    return ticket_create(
        customer=customer, body=body, channel=channel, actor=Actor.for_customer(customer)
    )


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[RunningServer]:
    server = RunningServer()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(_fake_openai_server: RunningServer, settings, monkeypatch) -> FakeOpenAI:  # type: ignore[no-untyped-def]
    """Every alias served by one fake OpenAI-compatible server (script emptied per test)."""
    fake = _fake_openai_server.fake
    fake.reset()
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-fake")
    deployment = Deployment(
        model="openai/gpt-4o-mini", api_base=fake.base_url, api_key_env="FAKE_OPENAI_KEY"
    )
    settings.LLM_DEPLOYMENTS = {alias: (deployment,) for alias in ALIASES}
    router_reset()
    return fake
