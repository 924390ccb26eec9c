"""Fixtures for the gateway: fake OpenAI-compatible servers and settings pointing at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from apps.llm.circuit import circuit_reset
from apps.llm.deployments import LOCAL_EXTRACTIVE, Deployment
from apps.llm.router import router_reset
from tests.llm.fake_openai import FakeOpenAI, RunningServer

FAKE_MODEL = "openai/gpt-4o-mini"
ALIASES = ("draft-fast", "draft-strong", "judge")


@pytest.fixture(scope="session")
def _fake_servers() -> Iterator[list[RunningServer]]:
    servers = [RunningServer() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def fakes(_fake_servers: list[RunningServer]) -> list[FakeOpenAI]:
    """Three fake providers, script and log emptied for this test."""
    for server in _fake_servers:
        server.fake.reset()
    return [server.fake for server in _fake_servers]


@pytest.fixture(autouse=True)
def _isolated_gateway(settings, monkeypatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every test starts with a fresh Router, closed circuits and quick, cheap settings."""
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-fake")
    settings.LLM_DEPLOYMENTS = {alias: (Deployment(LOCAL_EXTRACTIVE),) for alias in ALIASES}
    settings.LLM_FALLBACKS = {"draft-fast": ("draft-strong",), "draft-strong": (), "judge": ()}
    settings.LLM_REQUEST_TIMEOUT = 2.0
    settings.LLM_NUM_RETRIES = 1
    settings.LLM_ALLOWED_FAILS = 1
    settings.LLM_COOLDOWN_SECONDS = 30.0
    settings.LLM_CIRCUIT_FAILURE_THRESHOLD = 3
    settings.LLM_CIRCUIT_OPEN_SECONDS = 60.0
    settings.LLM_BUDGET_DAILY_USD = 0.0
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.LLM_BUDGET_TICKET_USD = 0.0
    settings.LLM_EXTRACTIVE_SCORER = "lexical"
    router_reset()
    circuit_reset(ALIASES)
    yield
    router_reset()
    circuit_reset(ALIASES)


def fake_deployment(fake: FakeOpenAI, **kwargs) -> Deployment:  # type: ignore[no-untyped-def]
    return Deployment(
        model=FAKE_MODEL, api_base=fake.base_url, api_key_env="FAKE_OPENAI_KEY", **kwargs
    )


@pytest.fixture
def use_fakes(settings) -> Callable[..., None]:  # type: ignore[no-untyped-def]
    """Point aliases at fake servers: use_fakes(**{"draft-fast": [fake_a, fake_b]})."""

    def configure(**aliases: list[FakeOpenAI]) -> None:
        deployments = dict(settings.LLM_DEPLOYMENTS)
        for alias, fakes_for_alias in aliases.items():
            deployments[alias.replace("_", "-")] = tuple(
                fake_deployment(f) for f in fakes_for_alias
            )
        settings.LLM_DEPLOYMENTS = deployments

    return configure
